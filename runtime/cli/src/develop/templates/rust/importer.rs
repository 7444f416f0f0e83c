//! {{name}}: a domicile importer. `domicile dev` imports fixtures/ at every save.

use domicile_sdk::data;

// Bindings of the `importer` world, with domicile's imports from the SDK.
domicile_sdk::generate!("importer", "wit");

struct App;

impl Guest for App {
    fn import(file_name: String, bytes: Vec<u8>) -> Result<String, String> {
        let text = String::from_utf8(bytes).map_err(|_| format!("{file_name} is not UTF-8 text"))?;
        let doctype = "{{id}}.line";
        let mut kept = 0;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let id = format!("{file_name}:{}", n + 1);
            let body = serde_json::json!({ "file": file_name, "line": n + 1, "text": line });
            data::put(doctype, Some(&id), &body).map_err(|e| e.to_string())?;
            kept += 1;
        }
        domicile_sdk::log::info(&format!("{kept} lines kept"));
        Ok(serde_json::json!({ "lines": kept }).to_string())
    }
}

export!(App);

#[cfg(test)]
mod tests {
    use super::*;

    // `cargo test` runs the app natively, on an in-memory home.
    #[test]
    fn keeps_each_line() {
        let home = domicile_sdk::testing::TestHome::new();
        let output = home.run(|| App::import("a.txt".into(), b"one\n\ntwo\n".to_vec())).unwrap();
        assert_eq!(output["lines"], 2);
        assert_eq!(home.documents("{{id}}.line").len(), 2);
    }
}
