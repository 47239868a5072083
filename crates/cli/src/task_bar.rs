//! The progress of an import task: a bar on a terminal, one line per change elsewhere (a
//! pipe or a CI log keeps a readable record instead of redraw sequences).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use preflight_ecs::Progress;

/// Shows an import task's progress on stderr.
pub struct TaskBar {
    bar: ProgressBar,
    quiet: bool,
}

impl TaskBar {
    /// A bar from 0 to 100 %; nothing at all when `quiet`.
    pub fn new(quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(100), target);
        bar.set_style(
            ProgressStyle::with_template("   {bar:40} {pos:>3}% {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        TaskBar { bar, quiet }
    }

    /// Shows a new observation of the task.
    pub fn update(&self, p: &Progress) {
        let line = format!(
            "task {} {}, image {} {}",
            p.task_status, p.task_process, p.image_status, p.image_progress
        );
        if let Some(pct) = percent(&p.task_process).or_else(|| percent(&p.image_progress)) {
            self.bar.set_position(pct);
        }
        if self.bar.is_hidden() {
            if !self.quiet {
                eprintln!("   {line}");
            }
        } else {
            self.bar.set_message(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `"40%"` → 40, capped at 100.
fn percent(s: &str) -> Option<u64> {
    s.trim()
        .trim_end_matches('%')
        .trim()
        .parse::<u64>()
        .ok()
        .map(|n| n.min(100))
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percents() {
        assert_eq!(percent("40%"), Some(40));
        assert_eq!(percent(" 100 % "), Some(100));
        assert_eq!(percent("250%"), Some(100));
        assert_eq!(percent(""), None);
        assert_eq!(percent("n/a"), None);
    }
}
