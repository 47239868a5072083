//! XML in and out: the CompleteMultipartUpload request body, and a tiny writer for responses.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::util::xml_escape;

/// Most `<Part>` entries accepted in a CompleteMultipartUpload body: OSS allows 10,000 parts.
pub const MAX_PARTS: usize = 10_000;

/// One `<Part>` of a CompleteMultipartUpload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletePart {
    /// `<PartNumber>` as text (validated by the caller).
    pub number: String,
    /// `<ETag>` with surrounding quotes removed.
    pub etag: String,
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompleteXmlError {
    /// Not well-formed or not the schema; the text says where.
    Malformed(String),
    /// More than [`MAX_PARTS`] parts.
    TooManyParts,
}

/// Parses `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"…"</ETag></Part>…`.
/// Entities (`&#34;`, `&quot;`) are decoded; unknown elements inside `<Part>` are refused.
pub fn parse_complete(body: &[u8]) -> Result<Vec<CompletePart>, CompleteXmlError> {
    let bad = |m: &str| CompleteXmlError::Malformed(m.to_string());
    let mut reader = Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<String> = Vec::new();
    let mut parts = Vec::new();
    let mut number: Option<String> = None;
    let mut etag: Option<String> = None;
    let mut buf = Vec::new();
    let mut saw_root = false;
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| CompleteXmlError::Malformed(e.to_string()))?;
        match ev {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let ok = match (stack.len(), name.as_str()) {
                    (0, "CompleteMultipartUpload") => !saw_root,
                    (1, "Part") => {
                        number = None;
                        etag = None;
                        true
                    }
                    (2, "PartNumber") | (2, "ETag") => true,
                    _ => false,
                };
                if !ok {
                    return Err(bad(&format!("unexpected element <{name}>")));
                }
                saw_root = true;
                stack.push(name);
            }
            Event::End(_) => {
                let name = stack.pop().ok_or_else(|| bad("unbalanced end tag"))?;
                if name == "Part" {
                    let (Some(n), Some(t)) = (number.take(), etag.take()) else {
                        return Err(bad("<Part> needs <PartNumber> and <ETag>"));
                    };
                    if parts.len() >= MAX_PARTS {
                        return Err(CompleteXmlError::TooManyParts);
                    }
                    parts.push(CompletePart {
                        number: n,
                        etag: t.trim_matches('"').to_string(),
                    });
                }
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                return Err(bad(&format!("empty element <{name}/>")));
            }
            Event::Text(t) => {
                let text = t
                    .decode()
                    .map_err(|e| CompleteXmlError::Malformed(e.to_string()))?
                    .into_owned();
                set_text(&stack, &mut number, &mut etag, text).map_err(|m| bad(&m))?;
            }
            Event::GeneralRef(r) => {
                // quick-xml 0.38 reports `&#34;` / `&quot;` apart from the text around them.
                let ch = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => {
                        let s = String::from_utf8_lossy(r.as_ref()).into_owned();
                        match s.as_str() {
                            "quot" => '"',
                            "amp" => '&',
                            "lt" => '<',
                            "gt" => '>',
                            "apos" => '\'',
                            _ => return Err(bad(&format!("unknown entity &{s};"))),
                        }
                    }
                    Err(e) => return Err(CompleteXmlError::Malformed(e.to_string())),
                };
                set_text(&stack, &mut number, &mut etag, ch.to_string()).map_err(|m| bad(&m))?;
            }
            Event::CData(_) => return Err(bad("CDATA is not allowed")),
            Event::Eof => break,
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
        }
        buf.clear();
    }
    if !stack.is_empty() || !saw_root {
        return Err(bad("document is incomplete"));
    }
    Ok(parts)
}

fn slot<'a>(
    stack: &[String],
    number: &'a mut Option<String>,
    etag: &'a mut Option<String>,
) -> Result<&'a mut Option<String>, String> {
    match stack.last().map(String::as_str) {
        Some("PartNumber") => Ok(number),
        Some("ETag") => Ok(etag),
        other => Err(format!("text not allowed in {other:?}")),
    }
}

fn set_text(
    stack: &[String],
    number: &mut Option<String>,
    etag: &mut Option<String>,
    text: String,
) -> Result<(), String> {
    let s = slot(stack, number, etag)?;
    match s {
        Some(existing) => existing.push_str(&text),
        None => *s = Some(text),
    }
    Ok(())
}

/// A minimal XML document writer (no namespaces, as OSS).
pub struct XmlWriter {
    out: String,
    stack: Vec<&'static str>,
}

impl XmlWriter {
    /// Starts a document with the XML declaration and the root element.
    pub fn new(root: &'static str) -> Self {
        let mut w = XmlWriter {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            stack: Vec::new(),
        };
        w.open(root);
        w
    }

    /// `<name>`.
    pub fn open(&mut self, name: &'static str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.stack.push(name);
        self
    }

    /// `</name>` of the innermost open element.
    pub fn close(&mut self) -> &mut Self {
        if let Some(name) = self.stack.pop() {
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
        self
    }

    /// `<name>text</name>`.
    pub fn el(&mut self, name: &str, text: &str) -> &mut Self {
        self.out
            .push_str(&format!("<{name}>{}</{name}>", xml_escape(text)));
        self
    }

    /// Text directly inside the innermost open element.
    pub fn el_text(&mut self, text: &str) -> &mut Self {
        self.out.push_str(&xml_escape(text));
        self
    }

    /// Closes everything and returns the document.
    pub fn finish(mut self) -> String {
        while !self.stack.is_empty() {
            self.close();
        }
        self.out.push('\n');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sdk_bodies() {
        let b = br#"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"3349DC700140D7F86A0784842780AB12"</ETag></Part><Part><PartNumber>2</PartNumber><ETag>&#34;8EFD&quot;</ETag></Part></CompleteMultipartUpload>"#;
        let p = parse_complete(b).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].etag, "3349DC700140D7F86A0784842780AB12");
        assert_eq!(p[1].number, "2");
        assert_eq!(p[1].etag, "8EFD");
        let pretty = b"<?xml version=\"1.0\"?>\n<CompleteMultipartUpload>\n  <Part>\n    <PartNumber>1</PartNumber>\n    <ETag>\"AB\"</ETag>\n  </Part>\n</CompleteMultipartUpload>";
        assert_eq!(parse_complete(pretty).unwrap()[0].etag, "AB");
    }

    #[test]
    fn refuses_garbage() {
        for b in [
            &b""[..],
            b"<CompleteMultipartUpload>",
            b"<Foo/>",
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag><Size>3</Size></Part></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload></Part>",
            b"\xff\xfe<x>",
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&bogus;</ETag></Part></CompleteMultipartUpload>",
        ] {
            assert!(
                matches!(parse_complete(b), Err(CompleteXmlError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        let mut many = String::from("<CompleteMultipartUpload>");
        for i in 1..=10_001 {
            many.push_str(&format!(
                "<Part><PartNumber>{i}</PartNumber><ETag>\"A\"</ETag></Part>"
            ));
        }
        many.push_str("</CompleteMultipartUpload>");
        assert_eq!(
            parse_complete(many.as_bytes()),
            Err(CompleteXmlError::TooManyParts)
        );
    }

    #[test]
    fn writes() {
        let mut w = XmlWriter::new("R");
        w.el("Key", "a&b").open("Inner").el("X", "1").close();
        assert_eq!(
            w.finish(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<R><Key>a&amp;b</Key><Inner><X>1</X></Inner></R>\n"
        );
    }
}
