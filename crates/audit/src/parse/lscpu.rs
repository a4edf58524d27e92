//! `lscpu -J`: `{"lscpu": [{"field": "Model name:", "data": "…", "children": [...]}]}` (newer
//! versions nest fields under their section).

use serde_json::Value;

use super::ParseError;

/// `(field without the colon, data)` of every entry, flattened.
pub fn parse(json: &str) -> Result<Vec<(String, String)>, ParseError> {
    let v: Value =
        serde_json::from_str(json).map_err(|e| ParseError::new("lscpu", e.to_string()))?;
    let list = v
        .get("lscpu")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::new("lscpu", "no `lscpu` list"))?;
    let mut out = Vec::new();
    flatten(list, &mut out, 0);
    if out.is_empty() {
        return Err(ParseError::new("lscpu", "no fields"));
    }
    Ok(out)
}

fn flatten(list: &[Value], out: &mut Vec<(String, String)>, depth: usize) {
    if depth > 8 {
        return;
    }
    for e in list {
        if let Some(field) = e.get("field").and_then(Value::as_str) {
            let data = match e.get("data") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            out.push((field.trim().trim_end_matches(':').to_string(), data));
        }
        if let Some(children) = e.get("children").and_then(Value::as_array) {
            flatten(children, out, depth + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flat_and_nested() {
        let f = super::parse(r#"{"lscpu":[{"field":"CPU(s):","data":"2"},{"field":"Vendor ID:","data":"AuthenticAMD","children":[{"field":"Model name:","data":"EPYC"}]}]}"#).unwrap();
        assert_eq!(f[2], ("Model name".to_string(), "EPYC".to_string()));
        assert!(super::parse(r#"{"lscpu":[]}"#).is_err());
    }
}
