//! What every command shows on stderr while the library works: the library's event lines
//! ([`event_lines`]), and bars for a map pass, an upload, an import task and the copies. Bars
//! are drawn only on a terminal; a pipe or a CI log gets one line per change instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use preflight_oss::UploadEvent;
use preflight_pipeline::fleet::FleetEvent;
use preflight_pipeline::rendering::{event_lines, upload_event_text, UploadText};
use preflight_pipeline::Event;
use preflight_report::Finding;

/// How a command lays out its progress.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// Put before every line (`batch` names the image: `[web-01] `).
    pub prefix: String,
    /// Indent the lines under the stage headers (`upload-and-import`).
    pub indent: bool,
    /// The uploader says more (`upload` alone: what a resume checks, the parts).
    pub detailed: bool,
    /// Ends the "waiting for import task" line: what Ctrl-C does then.
    pub ctrl_c: Option<&'static str>,
}

/// The progress of one run: its lines, and its bars until they end.
pub struct Progress {
    layout: Layout,
    /// Lines are printed.
    talk: bool,
    /// Bars are drawn (stderr, and only on a terminal).
    bars: bool,
    /// The result is JSON: a refusal's findings are in it, not on stderr.
    json: bool,
    /// The disks (system disk first): a map pass's bar is over the file's size.
    disks: Vec<PathBuf>,
    scan: Option<ProgressBar>,
    upload: Option<ProgressBar>,
    task: Option<ProgressBar>,
    copies: Option<(MultiProgress, HashMap<String, ProgressBar>)>,
    /// The key and the findings of `upload`'s destination rules, for a refusal's JSON.
    pub destination: (String, Vec<Finding>),
}

/// A run's progress, shared by the library's event handler and the command.
pub type Shared = Arc<Mutex<Progress>>;

/// Locks `p` (a panicked holder leaves it usable: it only draws).
pub fn lock(p: &Shared) -> MutexGuard<'_, Progress> {
    p.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The library's event handler that shows every event on `p`.
pub fn handler(p: &Shared) -> impl Fn(&Event) + Send + Sync + 'static {
    let p = p.clone();
    move |e: &Event| lock(&p).show(e)
}

impl Progress {
    /// Lines unless `quiet`, bars too when `bars`; `json` when the result is JSON.
    pub fn new(layout: Layout, quiet: bool, bars: bool, json: bool) -> Self {
        Progress {
            layout,
            talk: !quiet,
            bars: bars && !quiet,
            json,
            disks: Vec::new(),
            scan: None,
            upload: None,
            task: None,
            copies: None,
            destination: (String::new(), Vec::new()),
        }
    }

    /// The disks this run sends (system first), for the map pass's bar.
    pub fn disks(mut self, disks: Vec<PathBuf>) -> Self {
        self.disks = disks;
        self
    }

    /// Shared with an event handler.
    pub fn shared(self) -> Shared {
        Arc::new(Mutex::new(self))
    }

    /// Prints a line, laid out, above the bar when one is drawn.
    pub fn say(&self, text: &str) {
        if !self.talk {
            return;
        }
        let indent = if self.layout.indent && !text.starts_with("==") {
            "   "
        } else {
            ""
        };
        let line = format!("{}{indent}{text}", self.layout.prefix);
        // indicatif drops println on a hidden bar (stderr not a terminal): print directly then.
        match [&self.upload, &self.task].into_iter().flatten().next() {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => eprintln!("{line}"),
        }
    }

    /// Shows one event of the library.
    pub fn show(&mut self, e: &Event) {
        if !matches!(e, Event::Mapping { .. }) {
            end(&mut self.scan);
        }
        match e {
            Event::Mapping { disk, bytes } => {
                if self.scan.is_none() {
                    let size = (self.disks.get(*disk))
                        .and_then(|p| std::fs::metadata(p).ok())
                        .map_or(0, |m| m.len());
                    let bar = self.bar(size, "{binary_bytes} scanned {binary_bytes_per_sec} {msg}");
                    bar.set_message("finding the data");
                    self.scan = Some(bar);
                }
                if let Some(scan) = &self.scan {
                    scan.inc(*bytes);
                }
            }
            Event::Upload { event, .. } => self.upload_event(event),
            Event::UploadStarted { size, .. } => {
                self.say_lines(e);
                let template =
                    "{binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}";
                self.upload = Some(self.bar(*size, template));
            }
            Event::UploadFinished { .. } => {
                end(&mut self.upload);
                self.say_lines(e);
            }
            Event::TaskProgress(p) => {
                let (prefix, bars) = (self.layout.prefix.is_empty(), self.bars);
                let bar = self.task.get_or_insert_with(|| {
                    // Under `batch`'s image names no bar is drawn.
                    let indent = if prefix { "   " } else { "" };
                    new_bar(
                        100,
                        bars,
                        &format!("{indent}{{bar:40}} {{pos:>3}}% {{elapsed}} {{msg}}"),
                    )
                });
                if let Some(pct) = percent(&p.task_process).or_else(|| percent(&p.image_progress)) {
                    bar.set_position(pct);
                }
                bar.set_message(preflight_pipeline::rendering::task_progress_line(p));
                if bar.is_hidden() {
                    self.say_lines(e);
                }
            }
            Event::StageStarted(_) | Event::StageFinished { .. } => {
                end(&mut self.task);
                self.say_lines(e);
            }
            Event::WaitStarted { .. } => {
                for line in event_lines(e) {
                    match self.layout.ctrl_c {
                        Some(what) => self.say(&format!("{line}; Ctrl-C {what}")),
                        None => self.say(&line),
                    }
                }
            }
            Event::DestinationChecked { key, findings, .. } => {
                // A refusal asked for as JSON is printed as such, not here.
                if !(self.json && preflight_report::has_errors(findings)) {
                    self.say_lines(e);
                }
                self.destination = (key.clone(), findings.clone());
            }
            Event::Fleet(f) => self.copy(f, e),
            _ => self.say_lines(e),
        }
    }

    fn say_lines(&self, e: &Event) {
        for line in event_lines(e) {
            self.say(&line);
        }
    }

    /// One event of the uploader: the bar moves, or a line is printed.
    fn upload_event(&self, e: &UploadEvent) {
        if let (UploadEvent::PartDone { bytes, .. }, Some(bar)) = (e, &self.upload) {
            bar.inc(*bytes);
        }
        match upload_event_text(e, self.layout.detailed) {
            Some(UploadText::Line(line)) => self.say(&line),
            Some(UploadText::Status(status)) => {
                if let Some(bar) = &self.upload {
                    bar.set_message(status);
                }
            }
            None => {}
        }
    }

    /// A copy's bar, one per region, when drawn; else its line.
    fn copy(&mut self, f: &FleetEvent, e: &Event) {
        use std::io::IsTerminal as _;
        if !(self.bars && std::io::stderr().is_terminal()) {
            return self.say_lines(e);
        }
        let (multi, bars) = self
            .copies
            .get_or_insert_with(|| (MultiProgress::new(), HashMap::new()));
        let (region, message, position) = match f {
            FleetEvent::CopyStarted {
                region, image_id, ..
            } => (region, image_id.clone(), None),
            FleetEvent::CopyProgress {
                region,
                image_id,
                status,
                progress,
            } => {
                let pct = percent(progress).unwrap_or(0);
                (region, format!("{image_id} {status}"), Some(pct))
            }
            FleetEvent::CopyAvailable { region, image_id } => {
                (region, format!("{image_id} Available"), Some(100))
            }
            FleetEvent::CopyCancelled { region, image_id } => {
                (region, format!("{image_id} cancelled"), None)
            }
            _ => return,
        };
        let bar = bars.entry(region.clone()).or_insert_with(|| {
            let bar = multi.add(new_bar(
                100,
                true,
                "   copy {prefix:16} {bar:30} {pos:>3}% {msg}",
            ));
            bar.set_prefix(region.clone());
            bar
        });
        if let Some(pct) = position {
            bar.set_position(pct);
        }
        if matches!(f, FleetEvent::CopyAvailable { .. }) {
            bar.finish_with_message(message);
        } else if matches!(f, FleetEvent::CopyCancelled { .. }) {
            bar.abandon_with_message(message);
        } else {
            bar.set_message(message);
        }
    }

    /// A bar after the layout's prefix and indent.
    fn bar(&self, len: u64, rest: &str) -> ProgressBar {
        let indent = if self.layout.indent { "   " } else { "" };
        let template = format!("{}{indent}{{bar:40}} {rest}", self.layout.prefix);
        new_bar(len, self.bars, &template)
    }

    /// Removes the bars (the run ended); an upload stopped by Ctrl-C stays where it stopped.
    pub fn end(&mut self, interrupted: bool) {
        if let (true, Some(bar)) = (interrupted, self.upload.take()) {
            bar.abandon();
        }
        for bar in [&mut self.scan, &mut self.upload, &mut self.task] {
            end(bar);
        }
    }
}

fn end(bar: &mut Option<ProgressBar>) {
    if let Some(bar) = bar.take() {
        bar.finish_and_clear();
    }
}

/// A bar on stderr (drawn only on a terminal), or a hidden one.
fn new_bar(len: u64, drawn: bool, template: &str) -> ProgressBar {
    let target = if drawn {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// `"40%"` → 40, capped at 100.
fn percent(s: &str) -> Option<u64> {
    let n = s.trim().trim_end_matches('%').trim().parse::<u64>().ok()?;
    Some(n.min(100))
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
