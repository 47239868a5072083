//! The progress of an upload on stderr, for `upload` and `upload-and-import`: the map pass's
//! and the upload's bars, and a line per upload event worth a person's attention.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use preflight_oss::UploadEvent;

/// How a command lays out the upload's lines.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    /// Put before every line and bar (`upload-and-import` indents under its stage headers).
    pub indent: &'static str,
    /// `upload` alone says more: what a resume checks, what `--force` does, the parts.
    pub detailed: bool,
}

/// The upload's bars and lines, ended when the upload ends.
pub struct UploadProgress {
    layout: Layout,
    /// Lines are printed.
    talk: bool,
    /// Bars are drawn (stderr, and only on a terminal).
    bars: bool,
    /// The map pass, over the file's bytes.
    scan: Option<ProgressBar>,
    /// The upload, over the bytes sent.
    bar: Option<ProgressBar>,
}

impl UploadProgress {
    /// Lines when `talk`, bars when `bars`.
    pub fn new(layout: Layout, talk: bool, bars: bool) -> Self {
        UploadProgress {
            layout,
            talk,
            bars,
            scan: None,
            bar: None,
        }
    }

    /// Prints a line (indented), above the bar when one is drawn.
    pub fn say(&self, message: &str) {
        if !self.talk {
            return;
        }
        let line = format!("{}{message}", self.layout.indent);
        // indicatif drops println on a hidden bar (stderr not a terminal): print directly then.
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => eprintln!("{line}"),
        }
    }

    /// The map pass read `bytes` more of a file of `file_size` bytes.
    pub fn mapping(&mut self, bytes: u64, file_size: impl FnOnce() -> u64) {
        let (indent, bars) = (self.layout.indent, self.bars);
        self.scan
            .get_or_insert_with(|| {
                let template = format!(
                    "{indent}{{bar:40}} {{binary_bytes}} scanned {{binary_bytes_per_sec}} {{msg}}"
                );
                let bar = new_bar(file_size(), bars, &template);
                bar.set_message("finding the data");
                bar
            })
            .inc(bytes);
    }

    /// Ends the map pass's bar (the pass is over when another event comes).
    pub fn mapped(&mut self) {
        if let Some(scan) = self.scan.take() {
            scan.finish_and_clear();
        }
    }

    /// The upload of `size` bytes starts.
    pub fn started(&mut self, size: u64) {
        let template = format!(
            "{}{{bar:40}} {{binary_bytes}}/{{binary_total_bytes}} {{binary_bytes_per_sec}} ETA {{eta}} {{msg}}",
            self.layout.indent
        );
        self.bar = Some(new_bar(size, self.bars, &template));
    }

    /// One event of the uploader: the bar moves, or a line is printed.
    pub fn upload(&self, e: &UploadEvent) {
        let bar = self.bar.as_ref();
        match e {
            UploadEvent::PartDone { bytes, .. } => {
                if let Some(bar) = bar {
                    bar.inc(*bytes);
                }
            }
            e => match event_text(e, self.layout.detailed) {
                Some(Text::Line(line)) => self.say(&line),
                Some(Text::Status(status)) => {
                    if let Some(bar) = bar {
                        bar.set_message(status);
                    }
                }
                None => {}
            },
        }
    }

    /// Removes the bars (the upload ended).
    pub fn finish(&mut self) {
        for bar in [self.scan.take(), self.bar.take()].into_iter().flatten() {
            bar.finish_and_clear();
        }
    }

    /// Leaves the bars where they stopped (Ctrl-C).
    pub fn abandon(&mut self) {
        for bar in [self.scan.take(), self.bar.take()].into_iter().flatten() {
            bar.abandon();
        }
    }
}

/// What an uploader event shows.
#[derive(Debug, PartialEq)]
enum Text {
    /// A line of its own (unindented).
    Line(String),
    /// The bar's message.
    Status(String),
}

/// What `e` shows, `detailed` as `upload` alone says it; nothing for most events.
fn event_text(e: &UploadEvent, detailed: bool) -> Option<Text> {
    let either = |long: &'static str| if detailed { long } else { "" };
    Some(match e {
        UploadEvent::Resuming {
            upload_id,
            parts_on_server,
        } => Text::Line(format!(
            "resuming upload {upload_id}: OSS has {parts_on_server} parts{}",
            either("; checking them against the file")
        )),
        UploadEvent::StaleUploadAborted { upload_id } => Text::Line(format!(
            "the file changed since upload {upload_id} began: {}starting afresh",
            either("aborted it (its parts are deleted) and ")
        )),
        UploadEvent::UploadGone { upload_id } if detailed => Text::Line(format!(
            "upload {upload_id} no longer exists on OSS: starting afresh"
        )),
        UploadEvent::Started {
            multipart: true,
            part_size,
            parts,
            ..
        } if detailed => Text::Status(format!(
            "{parts} parts of {}",
            indicatif::BinaryBytes(*part_size)
        )),
        UploadEvent::Completing => Text::Status("verifying".into()),
        UploadEvent::Verifying { .. } if detailed => {
            Text::Status("OSS has an object of this size: comparing CRC-64".into())
        }
        UploadEvent::AlreadyThere { .. } => Text::Line(format!(
            "OSS already has this exact object (same size and CRC-64): nothing to send{}",
            either(" (--force sends it anyway)")
        )),
        UploadEvent::NotVerified { what } => Text::Line(format!("warning: {what}")),
        _ => return None,
    })
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

/// One line on a conversion: what is sent instead of what.
pub fn conversion_line(c: &preflight_pipeline::Conversion) -> String {
    let b = indicatif::BinaryBytes;
    if c.converted {
        format!(
            "sending a qcow2 of the data: {} instead of the {} {} file ({} of data)",
            b(c.qcow2_size),
            b(c.file_size),
            c.from,
            b(c.data_bytes)
        )
    } else {
        format!(
            "sending the {} file as it is: a qcow2 of its data would be {} of {}, less than {} % smaller",
            c.from,
            b(c.qcow2_size),
            b(c.file_size),
            preflight_pipeline::convert::AUTO_MIN_SAVING_PERCENT
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{event_text, Text};
    use preflight_oss::UploadEvent;

    fn line(e: &UploadEvent, detailed: bool) -> Option<Text> {
        event_text(e, detailed)
    }

    #[test]
    fn upload_says_more_than_upload_and_import() {
        let resuming = UploadEvent::Resuming {
            upload_id: "U1".into(),
            parts_on_server: 3,
        };
        assert_eq!(
            line(&resuming, true),
            Some(Text::Line(
                "resuming upload U1: OSS has 3 parts; checking them against the file".into()
            ))
        );
        assert_eq!(
            line(&resuming, false),
            Some(Text::Line("resuming upload U1: OSS has 3 parts".into()))
        );
        let gone = UploadEvent::UploadGone {
            upload_id: "U1".into(),
        };
        assert!(line(&gone, true).is_some());
        assert_eq!(line(&gone, false), None);
        assert_eq!(
            line(&UploadEvent::Completing, false),
            Some(Text::Status("verifying".into()))
        );
    }
}
