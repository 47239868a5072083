//! Helpers: run the binary, make images with qemu-img.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `ecs-preflight` with `args`.
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ecs-preflight"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run ecs-preflight")
}

/// Runs `ecs-preflight` and parses stdout as JSON; returns (exit code, json).
pub fn run_json(args: &[&str]) -> (i32, Value) {
    let out = run(args);
    let code = out.status.code().expect("exit code");
    let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}) for {args:?}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, json)
}

/// Runs a command and panics with its output if it fails.
pub fn sh(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e} (run fixtures/install-deps.sh)"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub use preflight_testkit::qemu::{convert_raw as qemu_convert_raw, info as qemu_info};

/// Writes a raw image of `size` bytes holding an MBR and a few patterned
/// and pseudo-random regions with holes between them.
pub fn make_raw(path: &Path, size: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
    let mut mbr = [0u8; 512];
    mbr[446] = 0x80;
    mbr[450] = 0x83;
    mbr[454..458].copy_from_slice(&2048u32.to_le_bytes());
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    f.write_all(&mbr).unwrap();
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut offset = 1 << 20;
    while offset + (96 << 10) < size {
        f.seek(SeekFrom::Start(offset)).unwrap();
        let mut chunk = vec![0u8; 96 << 10];
        for b in chunk.iter_mut().take(64 << 10) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *b = state.to_le_bytes()[3];
        }
        f.write_all(&chunk).unwrap();
        offset += 1 << 20;
    }
}

/// A temporary directory that lives as long as the value.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// `dir/name` as a String.
pub fn path_in(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Codes of the findings in a report.
pub fn codes(json: &Value) -> Vec<String> {
    json["findings"]
        .as_array()
        .expect("findings is a list")
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

/// Runs a command the tool printed for the user (`ecs-preflight wait …`) exactly as printed,
/// plus `extra`, with the emulator's key and a private HOME.
pub fn run_printed(printed: &str, home: &Path, extra: &[&str]) -> Output {
    let words: Vec<&str> = printed.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"ecs-preflight"), "{printed}");
    Command::new(env!("CARGO_BIN_EXE_ecs-preflight"))
        .args(&words[1..])
        .args(extra)
        .env_remove("ALIBABA_CLOUD_PROFILE")
        .env("HOME", home)
        .env(
            "ALIBABA_CLOUD_ACCESS_KEY_ID",
            preflight_emulator::DEFAULT_ACCESS_KEY_ID,
        )
        .env(
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            preflight_emulator::DEFAULT_ACCESS_KEY_SECRET,
        )
        .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
        .output()
        .expect("run the printed command")
}

/// Stdout parsed as JSON; a failure shows both streams.
pub fn json_of(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e})\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Spawns `cmd`, waits (at most 60 s) for a stderr line starting with `ready`, lets it run
/// 300 ms more, sends SIGINT, and returns what it wrote and how it ended.
pub fn interrupt_after(mut cmd: Command, ready: &'static str) -> Output {
    use std::io::{BufRead, BufReader, Read};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.starts_with(ready) {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no stderr line starting with {ready:?}"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    sh("kill", &["-INT", &child.id().to_string()]);
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let status = child.wait().unwrap();
    Output {
        status,
        stdout: stdout.into_bytes(),
        stderr: reader.join().unwrap().into_bytes(),
    }
}

/// Runs the `ecs-preflight wait …` command a run printed, exactly as printed, and checks
/// that it ends with the image `image_id` Available.
pub fn printed_wait_reaches_available(printed: &str, home: &Path, image_id: &Value) {
    let out = run_printed(
        printed,
        home,
        &["--poll-interval", "200ms", "--output", "json"],
    );
    let w = json_of(&out);
    assert_eq!(out.status.code(), Some(0), "{w}");
    assert_eq!(w["status"], "available", "{w}");
    assert_eq!(&w["image_id"], image_id);
}

/// The suite's emulator: every strict behaviour of the real service on. The account is
/// V4-only (V1 refused everywhere, EC 0002-00000080), ECS, RAM and STS answer only on ports of
/// their own and an RPC call that reaches the OSS endpoint is refused, as on the real cloud.
/// A test that needs a lenient setting turns it off itself and says why.
pub fn strict_config(data_dir: impl Into<PathBuf>) -> preflight_emulator::Config {
    let mut cfg = preflight_emulator::Config::for_tests(data_dir);
    cfg.strict = preflight_emulator::Strict::all();
    cfg.service_endpoints = true;
    cfg
}

/// Per-service endpoint flags for a [`strict_config`] emulator: OSS on its main port and, when
/// `rpc`, ECS and RAM on theirs (`upload` has no ECS/RAM flags); STS always.
pub fn endpoint_flags(emu: &preflight_emulator::Emulator, rpc: bool) -> Vec<String> {
    use preflight_emulator::Product;
    let service = |p: Product| {
        emu.service_endpoint(p)
            .expect("the suite's emulator serves ECS, RAM and STS on ports of their own")
    };
    let mut flags = vec!["--oss-endpoint".to_string(), emu.endpoint()];
    if rpc {
        flags.extend([
            "--ecs-endpoint".to_string(),
            service(Product::Ecs),
            "--ram-endpoint".to_string(),
            service(Product::Ram),
        ]);
    }
    flags.extend(["--sts-endpoint".to_string(), service(Product::Sts)]);
    flags
}

/// Credentials holding the emulator's default key, for clients a test drives directly.
pub fn emulator_creds() -> std::sync::Arc<preflight_aliyun::CredentialProvider> {
    std::sync::Arc::new(preflight_aliyun::CredentialProvider::fixed(
        preflight_aliyun::Credentials::new(
            preflight_emulator::DEFAULT_ACCESS_KEY_ID,
            preflight_emulator::DEFAULT_ACCESS_KEY_SECRET,
        ),
    ))
}

/// The ECS endpoint of a [`strict_config`] emulator.
pub fn ecs_endpoint(emu: &preflight_emulator::Emulator) -> String {
    emu.service_endpoint(preflight_emulator::Product::Ecs)
        .expect("the suite's emulator serves ECS on a port of its own")
}

/// Declares a test file's `Env`: an [`EmuEnv`] (reached by `Deref`) to which the file adds
/// its own setup and commands.
macro_rules! emu_env {
    ($($vis:tt)*) => {
        $($vis)* struct Env(crate::common::EmuEnv);

        impl std::ops::Deref for Env {
            type Target = crate::common::EmuEnv;

            fn deref(&self) -> &crate::common::EmuEnv {
                &self.0
            }
        }
    };
}
pub(crate) use emu_env;

/// An emulator on a runtime of its own, and a private folder for HOME, caches and images:
/// what the tests of each command against the emulator start from. Dropping it shuts the
/// emulator down.
pub struct EmuEnv {
    /// Runs the emulator, and whatever a test sends it directly.
    pub rt: tokio::runtime::Runtime,
    emu: Option<preflight_emulator::Emulator>,
    /// HOME, caches, images and the emulator's data (`emu`).
    pub dir: tempfile::TempDir,
}

impl EmuEnv {
    /// Starts the emulator that `configure` makes from its data folder.
    pub fn start(configure: impl FnOnce(PathBuf) -> preflight_emulator::Config) -> Self {
        let dir = tempdir();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cfg = configure(dir.path().join("emu"));
        let emu = rt.block_on(preflight_emulator::start(cfg)).unwrap();
        EmuEnv {
            rt,
            emu: Some(emu),
            dir,
        }
    }

    /// Restarts the emulator on the same data with the configuration `configure` makes
    /// (commands made after this use its new endpoint).
    pub fn restart(&mut self, configure: impl FnOnce(PathBuf) -> preflight_emulator::Config) {
        if let Some(emu) = self.emu.take() {
            self.rt.block_on(emu.shutdown());
        }
        let cfg = configure(self.dir.path().join("emu"));
        self.emu = Some(self.rt.block_on(preflight_emulator::start(cfg)).unwrap());
    }

    /// The running emulator.
    pub fn emu(&self) -> &preflight_emulator::Emulator {
        self.emu.as_ref().unwrap()
    }

    /// How many requests for `api` the emulator has had.
    pub fn requests(&self, api: &str) -> u64 {
        self.emu().counters().requests_for(api)
    }

    /// The images named `name` in cn-hangzhou, as DescribeImages lists them (through ECS's
    /// own port when the emulator has one).
    pub fn images_named(&self, name: &str) -> Vec<preflight_ecs::Image> {
        let emu = self.emu();
        let endpoint = emu
            .service_endpoint(preflight_emulator::Product::Ecs)
            .unwrap_or_else(|| emu.endpoint());
        let c = preflight_ecs::Client::new(
            preflight_ecs::ClientConfig::new("cn-hangzhou").with_endpoint(&endpoint),
            emulator_creds(),
        )
        .unwrap();
        self.rt
            .block_on(c.describe_images(&preflight_ecs::DescribeImagesQuery {
                image_name: Some(name.into()),
                ..Default::default()
            }))
            .unwrap()
    }

    /// The binary with the emulator's key in the environment, HOME and caches in the private
    /// folder, and no profile, STS token, metadata service or colour from the machine that
    /// runs the tests.
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ecs-preflight"));
        c.env_remove("ALIBABA_CLOUD_PROFILE")
            .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
            .env("HOME", self.dir.path())
            .env("XDG_CACHE_HOME", self.dir.path().join("cache"))
            .env(
                "ALIBABA_CLOUD_ACCESS_KEY_ID",
                preflight_emulator::DEFAULT_ACCESS_KEY_ID,
            )
            .env(
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                preflight_emulator::DEFAULT_ACCESS_KEY_SECRET,
            )
            .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
            .env("NO_COLOR", "1");
        c
    }
}

impl Drop for EmuEnv {
    fn drop(&mut self) {
        if let Some(emu) = self.emu.take() {
            self.rt.block_on(emu.shutdown());
        }
    }
}
