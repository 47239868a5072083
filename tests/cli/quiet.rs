//! `--quiet` means one thing in every command that has it: no progress and no notes on stderr;
//! the JSON asked for with `--output json` is still printed, and in human form the images a
//! command made (`check` and `upload` print nothing: their exit code is the result). Each test
//! runs the command without `--quiet` first, to show there is chatter to silence.

use crate::common::EmuEnv;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use preflight_emulator::Config;
use serde_json::Value;

use crate::common::json_of;

const MIB: u64 = 1 << 20;

crate::common::emu_env!();

impl Env {
    fn new() -> Self {
        Env(EmuEnv::start(|data_dir| {
            let mut cfg = Config::for_tests(data_dir);
            cfg.buckets = vec!["images@cn-hangzhou".parse().unwrap()];
            cfg.task_seconds = 0.5;
            cfg
        }))
    }

    fn url(&self) -> String {
        self.emu().endpoint()
    }

    /// The binary with `args` (the emulator's URL and key, a private HOME and cache).
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.command();
        c.args(args);
        // `check` reads only the file.
        if args.first() != Some(&"check") {
            c.args(["--emulator", &self.url()]);
        }
        c
    }

    /// A 5 GiB sparse raw disk with `data` MiB of bytes at 1 MiB: `upload` sends it as a
    /// qcow2 and says so.
    fn sparse_raw(&self, name: &str, data: u64) -> PathBuf {
        use std::io::{Seek, SeekFrom, Write};
        let p = self.dir.path().join(name);
        let mut f = std::fs::File::create(&p).unwrap();
        f.set_len(5 << 30).unwrap();
        f.seek(SeekFrom::Start(MIB)).unwrap();
        let bytes: Vec<u8> = (0..data * MIB).map(|i| (i % 251) as u8 | 1).collect();
        f.write_all(&bytes).unwrap();
        p
    }

    fn path(&self, p: &Path) -> String {
        p.to_str().unwrap().to_string()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `args` and `args` + `--quiet`: the first talks on stderr, the second says nothing
/// there; both exit `code`. Returns the quiet run.
fn quiet_run(env: &Env, args: &[&str], code: i32) -> Output {
    let loud = env.cmd(args).output().unwrap();
    assert_eq!(loud.status.code(), Some(code), "{}", stderr(&loud));
    assert!(
        !loud.stderr.is_empty(),
        "{args:?} says nothing without --quiet"
    );
    let quiet = env.cmd(&[args, &["--quiet"]].concat()).output().unwrap();
    assert_eq!(quiet.status.code(), Some(code), "{}", stderr(&quiet));
    assert!(
        quiet.stderr.is_empty(),
        "{args:?} --quiet printed on stderr:\n{}",
        stderr(&quiet)
    );
    quiet
}

#[test]
fn check_quiet_keeps_the_json_and_prints_no_human_report() {
    let env = Env::new();
    let image = env.sparse_raw("disk.raw", 1);
    let image = env.path(&image);
    let json = env
        .cmd(&["check", &image, "--skip-guest", "--quiet", "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(0), "{}", stderr(&json));
    assert!(json_of(&json)["findings"].is_array());
    assert!(json.stderr.is_empty(), "{}", stderr(&json));
    let human = env
        .cmd(&["check", &image, "--skip-guest", "-q"])
        .output()
        .unwrap();
    assert_eq!(human.status.code(), Some(0));
    assert!(human.stdout.is_empty() && human.stderr.is_empty());
}

#[test]
fn upload_quiet_keeps_the_json_and_drops_progress_and_notes() {
    let env = Env::new();
    let image = env.sparse_raw("disk.raw", 3);
    let image = env.path(&image);
    let args = [
        "upload",
        &image,
        "--region",
        "cn-hangzhou",
        "--bucket",
        "images",
        "--part-size",
        "1MiB",
        "--multipart-threshold",
        "1MiB",
        "-o",
        "json",
    ];
    let loud = env.cmd(&args).output().unwrap();
    let said = stderr(&loud);
    assert!(
        said.contains("credentials:") && said.contains("sending a qcow2"),
        "{said}"
    );
    let out = quiet_run(&env, &args, 0);
    let v = json_of(&out);
    assert_eq!(v["key"], "disk.qcow2", "{v}");
    assert_eq!(v["already_there"], true, "{v}");
    // Human form: the exit code is the result.
    let human = env
        .cmd(&[&args[..args.len() - 2], &["-q"]].concat())
        .output()
        .unwrap();
    assert_eq!(human.status.code(), Some(0));
    assert!(human.stdout.is_empty() && human.stderr.is_empty());
}

/// Uploads `disk.raw` (as `disk.qcow2`) for the import tests.
fn uploaded(env: &Env) {
    let image = env.sparse_raw("disk.raw", 1);
    let out = env
        .cmd(&[
            "upload",
            &env.path(&image),
            "--region",
            "cn-hangzhou",
            "--bucket",
            "images",
            "-q",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

fn import_args(name: &str) -> Vec<String> {
    [
        "import",
        "--region",
        "cn-hangzhou",
        "--bucket",
        "images",
        "--object",
        "disk.qcow2",
        "--format",
        "QCOW2",
        "--image-name",
        name,
        "--disk-image-size",
        "20",
        "--platform",
        "Ubuntu",
        "--poll-interval",
        "100ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn import_and_wait_quiet_keep_the_result() {
    let env = Env::new();
    uploaded(&env);
    let mut args = import_args("quiet-01");
    args.extend(["-o".into(), "json".into()]);
    let out = quiet_run(&env, &strs(&args), 0);
    let v = json_of(&out);
    assert_eq!(v["status"], "available", "{v}");
    // Human form: the image made is the result.
    let image_id = v["image_id"].as_str().unwrap().to_string();
    let mut args = import_args("quiet-01");
    args.push("-q".into());
    let human = env.cmd(&strs(&args)).output().unwrap();
    assert_eq!(human.status.code(), Some(0), "{}", stderr(&human));
    assert!(stdout(&human).contains(&image_id), "{}", stdout(&human));
    assert!(human.stderr.is_empty(), "{}", stderr(&human));

    // `wait` on the task of an import started with --no-wait.
    let mut args = import_args("quiet-02");
    args.extend(["--no-wait".into(), "-o".into(), "json".into()]);
    let started = env.cmd(&strs(&args)).output().unwrap();
    let task = json_of(&started)["task_id"].as_str().unwrap().to_string();
    let wait = [
        "wait",
        "--region",
        "cn-hangzhou",
        "--task-id",
        &task,
        "--poll-interval",
        "100ms",
    ];
    let out = quiet_run(&env, &[&wait[..], &["-o", "json"]].concat(), 0);
    assert_eq!(json_of(&out)["status"], "available");
    let human = env.cmd(&[&wait[..], &["-q"]].concat()).output().unwrap();
    assert_eq!(human.status.code(), Some(0));
    assert!(!human.stdout.is_empty() && human.stderr.is_empty());
}

#[test]
fn upload_and_import_quiet_keeps_the_result() {
    let env = Env::new();
    let image = env.sparse_raw("web.raw", 1);
    let image = env.path(&image);
    let args = [
        "upload-and-import",
        &image,
        "--region",
        "cn-hangzhou",
        "--bucket",
        "images",
        "--image-name",
        "web-01",
        "--skip-guest",
        "--poll-interval",
        "100ms",
    ];
    let out = quiet_run(&env, &[&args[..], &["-o", "json"]].concat(), 0);
    let v = json_of(&out);
    let image_id = v["image_id"].as_str().unwrap_or_else(|| panic!("{v}"));
    let human = env.cmd(&[&args[..], &["-q"]].concat()).output().unwrap();
    assert_eq!(human.status.code(), Some(0), "{}", stderr(&human));
    assert!(stdout(&human).contains(image_id), "{}", stdout(&human));
    assert!(human.stderr.is_empty(), "{}", stderr(&human));
}

#[test]
fn batch_quiet_keeps_the_result() {
    let env = Env::new();
    env.sparse_raw("a.raw", 1);
    let manifest = env.dir.path().join("batch.toml");
    std::fs::write(
        &manifest,
        "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"images\"\nskip_guest = true\n\
\n[[image]]\npath = \"a.raw\"\nimage_name = \"a-01\"\n",
    )
    .unwrap();
    let m = env.path(&manifest);
    let args = ["batch", &m, "--poll-interval", "100ms"];
    let out = quiet_run(&env, &[&args[..], &["-o", "json"]].concat(), 0);
    let v: Value = json_of(&out);
    let id = v["images"][0]["image_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string();
    let human = env.cmd(&[&args[..], &["-q"]].concat()).output().unwrap();
    assert_eq!(human.status.code(), Some(0), "{}", stderr(&human));
    assert!(stdout(&human).contains(&id), "{}", stdout(&human));
    assert!(human.stderr.is_empty(), "{}", stderr(&human));
}
