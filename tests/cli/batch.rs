//! `ecs-preflight batch MANIFEST` against an in-process emulator: a three-image manifest with
//! one bad image (the two others end Available, exit 1, the summary names the bad one, and a
//! rerun makes nothing twice), Ctrl-C in the middle and a rerun that finishes, `--check-only`,
//! and every manifest error refused with its line before anything starts.

use crate::common::EmuEnv;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use preflight_emulator::{Config, Faults};
use serde_json::Value;

use crate::common::json_of;

crate::common::emu_env!();

impl Env {
    fn new() -> Self {
        Env::with_task_seconds(1.0)
    }

    /// An emulator whose import tasks end after `task_seconds`.
    fn with_task_seconds(task_seconds: f64) -> Self {
        Env(EmuEnv::start(|data_dir| {
            let mut cfg = Config::for_tests(data_dir);
            cfg.buckets = vec!["images@cn-hangzhou".parse().unwrap()];
            cfg.task_seconds = task_seconds;
            cfg.import_role = true;
            cfg
        }))
    }

    /// A 5 GiB qcow2 in the manifest's folder holding `data` MiB of pseudo-random bytes at
    /// 1 MiB (made from a sparse raw file by qemu-img).
    fn qcow2(&self, name: &str, data: u64, seed: u64) -> PathBuf {
        use std::io::{Seek, SeekFrom, Write};
        let p = self.dir.path().join(name);
        let raw = self.dir.path().join(format!("{name}.raw"));
        let mut f = std::fs::File::create(&raw).unwrap();
        f.set_len(5 << 30).unwrap();
        let bytes = preflight_testkit::Rng::bytes(
            (seed << 32) ^ 0x9e37_79b9_7f4a_7c15,
            usize::try_from(data << 20).unwrap(),
        );
        f.seek(SeekFrom::Start(1 << 20)).unwrap();
        f.write_all(&bytes).unwrap();
        drop(f);
        crate::common::qemu_convert_raw(&raw, "qcow2", &[], &p);
        std::fs::remove_file(&raw).unwrap();
        p
    }

    fn manifest(&self, text: &str) -> PathBuf {
        let p = self.dir.path().join("batch.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `ecs-preflight batch ARGS --emulator URL` with the emulator's key and a private HOME.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.command();
        c.arg("batch")
            .args(args)
            .args(["--emulator", &self.emu().endpoint()]);
        c
    }
}

fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array()
        .unwrap_or_else(|| panic!("not an array: {rows}"))
        .iter()
        .find(|r| r["image"] == name)
        .unwrap_or_else(|| panic!("no row {name}: {rows}"))
}

/// Two good images (one with a data disk) and a blank one whose guest check fails.
const THREE: &str = r#"[defaults]
region = "cn-hangzhou"
bucket = "images"
skip_guest = true
platform = "Ubuntu"

[[image]]
path = "web.qcow2"
image_name = "web-01"
data_disk = ["web-data.qcow2"]

[[image]]
path = "bad.qcow2"
image_name = "bad-01"
skip_guest = false

[[image]]
path = "db.qcow2"
image_name = "db-01"
"#;

#[test]
fn one_bad_image_never_stops_the_others_and_a_rerun_makes_nothing_twice() {
    let env = Env::new();
    for (n, seed) in [("web.qcow2", 1), ("web-data.qcow2", 2), ("db.qcow2", 3)] {
        env.qcow2(n, 1, seed);
    }
    env.qcow2("bad.qcow2", 0, 0);
    let m = env.manifest(THREE);
    let m = m.to_str().unwrap();
    let args = [m, "--poll-interval", "200ms", "--output", "json"];
    let out = env.cmd(&args).output().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(v["status"], "complete", "{v}");
    let rows = v["images"].clone();
    assert_eq!(rows.as_array().unwrap().len(), 3, "{rows}");
    let mut ids = Vec::new();
    for name in ["web-01", "db-01"] {
        let r = row(&rows, name);
        assert_eq!(r["status"], "available", "{r}");
        let listed = env.images_named(name);
        assert_eq!(listed.len(), 1, "{name}");
        assert_eq!(listed[0].status, "Available");
        assert_eq!(r["image_id"], listed[0].image_id.as_str());
        ids.push(r["image_id"].clone());
    }
    assert_eq!(row(&rows, "web-01")["uploads"].as_array().unwrap().len(), 2);
    let bad = row(&rows, "bad-01");
    assert_eq!(bad["status"], "refused", "{bad}");
    let codes: Vec<&str> = bad["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(
        !codes.is_empty() && codes.iter().all(|c| c.starts_with("GUEST.")),
        "{bad}"
    );
    assert!(env.images_named("bad-01").is_empty());

    // The rerun: nothing sent again, the same two images, none made twice.
    env.emu().reset_counters();
    let out = env
        .cmd(&[
            m,
            "--poll-interval",
            "200ms",
            "--output",
            "human",
            "--quiet",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(env.requests("PutObject") + env.requests("UploadPart"), 0);
    for (name, id) in ["web-01", "db-01"].iter().zip(&ids) {
        let listed = env.images_named(name);
        assert_eq!(listed.len(), 1, "{name}");
        assert_eq!(listed[0].image_id, id.as_str().unwrap());
    }
    // The human summary: one line per image, the bad one named with why.
    let text = String::from_utf8_lossy(&out.stdout);
    let line_of = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{text}"))
            .to_string()
    };
    assert!(
        line_of("web-01").contains(ids[0].as_str().unwrap()),
        "{text}"
    );
    assert!(line_of("db-01").contains("available"), "{text}");
    let bad = line_of("bad-01");
    assert!(bad.contains("refused") && bad.contains(codes[0]), "{text}");
}

#[test]
fn ctrl_c_stops_starting_new_images_and_a_rerun_finishes_the_batch() {
    let env = Env::new();
    for (n, seed) in [("a.qcow2", 1), ("b.qcow2", 2), ("c.qcow2", 3)] {
        env.qcow2(n, 3, seed);
    }
    let m = env.manifest(
        "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"images\"\nskip_guest = true\n\n\
         [[image]]\npath = \"a.qcow2\"\nimage_name = \"a-01\"\n\n\
         [[image]]\npath = \"b.qcow2\"\nimage_name = \"b-01\"\n\n\
         [[image]]\npath = \"c.qcow2\"\nimage_name = \"c-01\"\n",
    );
    let m = m.to_str().unwrap();
    // One image at a time, in parts of 256 KiB, at 512 KiB/s: the first upload is under
    // way when SIGINT comes.
    env.emu().set_faults(Faults {
        bandwidth_bytes_per_sec: 512 << 10,
        ..Faults::default()
    });
    let args = [
        m,
        "--parallel",
        "1",
        "--poll-interval",
        "200ms",
        "--multipart-threshold",
        "1MiB",
        "--part-size",
        "256KiB",
        "--upload-parallel",
        "1",
        "--output",
        "json",
    ];
    // SIGINT once OSS holds a few of the first image's parts (whole parts, so a rerun can
    // keep them).
    let child = env
        .cmd(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while env
        .emu()
        .counters()
        .parts
        .iter()
        .filter(|p| p.stored > 0)
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "no part stored");
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::common::sh("kill", &["-INT", &child.id().to_string()]);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(130), "{v}\n{stderr}");
    assert_eq!(v["status"], "interrupted", "{v}");
    let rows = &v["images"];
    assert_eq!(row(rows, "a-01")["status"], "interrupted", "{v}");
    assert_eq!(row(rows, "a-01")["stage"], "upload", "{v}");
    assert_eq!(row(rows, "b-01")["status"], "not_started", "{v}");
    assert_eq!(row(rows, "c-01")["status"], "not_started", "{v}");
    assert_eq!(env.requests("ImportImage"), 0);
    let parts_before = env.requests("UploadPart");
    assert!(parts_before > 0, "no part was sent before SIGINT");
    let printed = v["continue_command"].as_str().unwrap();
    assert!(
        stderr.contains(&format!("continue with: {printed}")),
        "{stderr}"
    );

    // Run the printed command, word for word: every image ends Available, the first one's
    // parts sent before SIGINT are kept.
    env.emu().set_faults(Faults::default());
    let words: Vec<&str> = printed.split_whitespace().collect();
    assert_eq!(&words[..2], ["ecs-preflight", "batch"], "{printed}");
    let out = env.command().args(&words[1..]).output().unwrap();
    let rows = json_of(&out)["images"].clone();
    assert_eq!(out.status.code(), Some(0), "{rows}");
    for name in ["a-01", "b-01", "c-01"] {
        assert_eq!(row(&rows, name)["status"], "available", "{rows}");
        assert_eq!(env.images_named(name).len(), 1, "{name}");
    }
    let reused = row(&rows, "a-01")["uploads"][0]["parts_reused"]
        .as_u64()
        .unwrap();
    assert!(reused > 0, "the interrupted upload did not resume: {rows}");
}

#[test]
fn ctrl_c_leaves_a_running_import_running_and_the_rerun_takes_it_up() {
    let env = Env::with_task_seconds(4.0);
    env.qcow2("a.qcow2", 0, 0);
    env.qcow2("b.qcow2", 0, 0);
    let m = env.manifest(
        "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"images\"\nskip_guest = true\n\n\
         [[image]]\npath = \"a.qcow2\"\nimage_name = \"a-01\"\n\n\
         [[image]]\npath = \"b.qcow2\"\nimage_name = \"b-01\"\n",
    );
    let m = m.to_str().unwrap();
    // One import task at a time: the second image waits for the first one's to end.
    let args = [
        m,
        "--max-imports",
        "1",
        "--poll-interval",
        "200ms",
        "--output",
        "json",
    ];
    // SIGINT 300 ms after the first ImportImage answered, whichever image it was.
    let mut child = env
        .cmd(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if let Some(name) = line
                .strip_prefix('[')
                .and_then(|l| l.split_once("] image m-"))
                .map(|(n, _)| n.to_string())
            {
                let _ = tx.send(name);
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("no import started");
    let second = if first == "a-01" { "b-01" } else { "a-01" };
    std::thread::sleep(Duration::from_millis(300));
    crate::common::sh("kill", &["-INT", &child.id().to_string()]);
    let out = child.wait_with_output().unwrap();
    reader.join().unwrap();
    let v = json_of(&out);
    assert_eq!(out.status.code(), Some(130), "{v}");
    let a = row(&v["images"], &first);
    assert_eq!(a["status"], "interrupted", "{v}");
    assert_eq!(a["stage"], "wait", "{v}");
    let image_id = a["image_id"].as_str().unwrap().to_string();
    assert_eq!(row(&v["images"], second)["image_id"], Value::Null, "{v}");
    // Counted in images, not requests: a slow answer may be retried with the same token.
    assert!(
        env.images_named(second).is_empty(),
        "the import limit let a second one in"
    );
    assert_eq!(
        env.requests("CancelTask"),
        0,
        "a batch never cancels imports"
    );

    let out = env.cmd(&args).output().unwrap();
    let rows = json_of(&out)["images"].clone();
    assert_eq!(out.status.code(), Some(0), "{rows}");
    assert_eq!(row(&rows, &first)["image_id"], image_id.as_str(), "{rows}");
    assert_eq!(row(&rows, &first)["reused"], true, "{rows}");
    for name in ["a-01", "b-01"] {
        assert_eq!(env.images_named(name).len(), 1, "{name}");
    }
}

#[test]
fn check_only_checks_every_image_and_prints_one_table() {
    let env = Env::new();
    for n in ["web.qcow2", "web-data.qcow2", "db.qcow2"] {
        env.qcow2(n, 0, 0);
    }
    env.qcow2("bad.qcow2", 0, 0);
    let m = env.manifest(THREE);
    let m = m.to_str().unwrap();
    let out = env
        .cmd(&[m, "--check-only", "--output", "json"])
        .output()
        .unwrap();
    let rows = json_of(&out);
    assert_eq!(out.status.code(), Some(1), "{rows}");
    assert_eq!(row(&rows, "web-01")["verdict"], "pass", "{rows}");
    assert_eq!(row(&rows, "db-01")["verdict"], "pass", "{rows}");
    let bad = row(&rows, "bad-01");
    assert_eq!(bad["verdict"], "fail", "{bad}");
    assert!(bad["errors"].as_u64().unwrap() > 0, "{bad}");
    // The data disk was checked with its image.
    assert_eq!(
        row(&rows, "web-01")["report"]["disks"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Nothing went to the cloud.
    for api in ["PutObject", "InitiateMultipartUpload", "ImportImage"] {
        assert_eq!(env.requests(api), 0, "{api}");
    }
    let out = env.cmd(&[m, "--check-only"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let head = text.lines().next().unwrap_or_default();
    for col in ["IMAGE", "VERDICT", "ERRORS", "WARNINGS"] {
        assert!(head.contains(col), "{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("bad-01") && l.contains("fail")),
        "{text}"
    );
}

/// Runs `batch` on a manifest that must be refused: exit 2, the message names `line`,
/// and nothing reached the emulator.
fn refused(env: &Env, text: &str, line: usize, needle: &str) {
    let m = env.manifest(text);
    let out = env
        .cmd(&[m.to_str().unwrap(), "--output", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("batch.toml:{line}:")) && stderr.contains(needle),
        "want line {line} and {needle:?}: {stderr}"
    );
    assert!(out.stdout.is_empty());
    let c = env.emu().counters();
    for api in [
        "GetBucketInfo",
        "PutObject",
        "InitiateMultipartUpload",
        "ImportImage",
    ] {
        assert_eq!(c.requests_for(api), 0, "{api} was called");
    }
}

#[test]
fn a_bad_manifest_is_refused_with_its_line_before_anything_starts() {
    let env = Env::new();
    env.qcow2("a.qcow2", 0, 0);
    env.qcow2("b.qcow2", 0, 0);
    let head = "[defaults]\nregion = \"cn-hangzhou\"\nbucket = \"images\"\n";
    // An unknown key.
    refused(
        &env,
        &format!("{head}[[image]]\npath = \"a.qcow2\"\nimagename = \"x\"\n"),
        6,
        "imagename",
    );
    // A wrong type.
    refused(
        &env,
        &format!("{head}[[image]]\npath = \"a.qcow2\"\nskip_guest = \"yes\"\n"),
        6,
        "",
    );
    // A duplicate image name.
    refused(
        &env,
        &format!(
            "{head}[[image]]\npath = \"a.qcow2\"\nimage_name = \"web\"\n\n[[image]]\npath = \"b.qcow2\"\nimage_name = \"web\"\n"
        ),
        10,
        "already used at line 6",
    );
    // A file that does not exist, listed after a good image.
    refused(
        &env,
        &format!("{head}[[image]]\npath = \"a.qcow2\"\n\n[[image]]\npath = \"missing.qcow2\"\n"),
        8,
        "missing.qcow2",
    );
    // A missing data disk.
    refused(
        &env,
        &format!("{head}[[image]]\npath = \"a.qcow2\"\ndata_disk = [\"gone.raw\"]\n"),
        6,
        "gone.raw",
    );
    // The manifest itself missing: exit 2 too.
    let out = env
        .cmd(&[env.dir.path().join("nope.toml").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
}
