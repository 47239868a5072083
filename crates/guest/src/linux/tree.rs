//! The root with the filesystems /etc/fstab mounts on it, read as one tree.

use super::*;

/// Bytes of an executable read for its ELF header.
pub(super) const ELF_HEAD: u64 = 64;
/// The root with the filesystems /etc/fstab mounts on it.
pub(super) struct Tree<'x, 'v> {
    pub(super) vols: &'x mut [Volume<'v>],
    /// (mount point, volume index), longest first.
    pub(super) mounts: Vec<(String, usize)>,
}

impl Tree<'_, '_> {
    pub(super) fn locate(&mut self, path: &str) -> Option<(&mut (dyn Fs + '_), String)> {
        let (mp, vi) = self
            .mounts
            .iter()
            .find(|(mp, _)| mp == "/" || path == mp || path.starts_with(&format!("{mp}/")))?
            .clone();
        let rest = if mp == "/" {
            path.to_string()
        } else {
            path[mp.len()..].to_string()
        };
        let rest = if rest.is_empty() {
            "/".to_string()
        } else {
            rest
        };
        let fs = self.vols.get_mut(vi)?.fs.as_deref_mut()?;
        Some((fs, rest))
    }
    pub(super) fn read(&mut self, path: &str, limit: u64) -> Result<Vec<u8>, FsError> {
        match self.locate(path) {
            Some((fs, p)) => fs.read(&p, limit),
            None => Err(FsError::NotFound),
        }
    }
    pub(super) fn text(&mut self, path: &str) -> Option<String> {
        self.read(path, MAX_TEXT)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }
    pub(super) fn list(&mut self, path: &str) -> Vec<String> {
        match self.locate(path) {
            Some((fs, p)) => fs.list(&p).unwrap_or_default(),
            None => Vec::new(),
        }
    }
    pub(super) fn exists(&mut self, path: &str) -> bool {
        match self.locate(path) {
            Some((fs, p)) => fs.exists(&p),
            None => false,
        }
    }
    pub(super) fn head(&mut self, path: &str) -> Option<Vec<u8>> {
        // Executables are big; read through a bounded window.
        match self.read(path, 256 * 1024 * 1024) {
            Ok(mut b) => {
                b.truncate(usize::try_from(ELF_HEAD).unwrap_or(64));
                Some(b)
            }
            Err(_) => None,
        }
    }
}

impl bootloader::Files for Tree<'_, '_> {
    fn text(&mut self, path: &str) -> Option<String> {
        Tree::text(self, path)
    }
    fn list(&mut self, path: &str) -> Vec<String> {
        Tree::list(self, path)
    }
}
