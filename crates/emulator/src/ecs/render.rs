//! JSON → XML for clients that ask for `Format=XML` (the RPC default): objects become nested
//! elements, arrays repeat their parent element name (`{"Region":[a,b]}` →
//! `<Region>a</Region><Region>b</Region>`).

use serde_json::Value;

use crate::util::xml_escape;

fn write(out: &mut String, name: &str, v: &Value) {
    match v {
        Value::Array(items) => {
            for item in items {
                write(out, name, item);
            }
        }
        Value::Object(map) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in map {
                write(out, k, v);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => out.push_str(&format!("<{name}></{name}>")),
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", xml_escape(s))),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

/// The document `<?xml …?><root>…</root>`.
pub fn to_xml(root: &str, v: &Value) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    write(&mut out, root, v);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nests_and_repeats() {
        let v = serde_json::json!({"RequestId": "r&1", "Regions": {"Region": [{"RegionId": "a"}, {"RegionId": "b"}]}, "N": 3});
        assert_eq!(
            to_xml("DescribeRegionsResponse", &v),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><DescribeRegionsResponse><N>3</N><Regions><Region><RegionId>a</RegionId></Region><Region><RegionId>b</RegionId></Region></Regions><RequestId>r&amp;1</RequestId></DescribeRegionsResponse>"
        );
    }
}
