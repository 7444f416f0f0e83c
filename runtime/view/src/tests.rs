use serde_json::json;

use super::*;

fn check(view: serde_json::Value) -> Result<Option<View>, ViewError> {
    check_output(&json!({ "data": 1, "view": view }))
}

fn refused_at(view: serde_json::Value) -> String {
    check(view).expect_err("the view should be refused").at
}

fn days_chart() -> serde_json::Value {
    json!({ "chart": { "kind": "bar", "title": "Energy per day", "unit": "kWh",
        "x": ["2026-03-01", "2026-03-02", "2026-03-03"],
        "series": [{ "name": "kWh", "values": [12.9, null, 8.25] }] } })
}

#[test]
fn an_output_without_a_view_has_none() {
    assert_eq!(check_output(&json!({ "kwh": 3 })).unwrap(), None);
    assert_eq!(check_output(&json!([1, 2])).unwrap(), None);
}

#[test]
fn every_kind_of_block_is_read() {
    let view = check(json!([
        { "heading": "March" },
        { "text": "Two lines\nof text; < 5 kWh is fine" },
        { "number": { "label": "March so far", "value": 207, "unit": "kWh", "delta": 28.0, "versus": "last year" } },
        { "table": { "columns": ["category", "EUR"], "rows": [["food", 412.5], ["rent", null]] } },
        days_chart(),
        { "chart": { "kind": "stacked-bar", "title": "CO2", "x": ["Jan"], "series": [
            { "name": "car", "values": [12] }, { "name": "bus", "values": [3] }] } },
    ]))
    .unwrap()
    .unwrap();
    assert_eq!(view.0.len(), 6);
    assert_eq!(view.0[0], Block::Heading("March".into()));
    let Block::Table(table) = &view.0[3] else { panic!("a table") };
    assert_eq!(table.rows[0], vec![Some(Cell::Text("food".into())), Some(Cell::Number(412.5))]);
    assert_eq!(table.rows[1][1], None);
}

#[test]
fn a_view_that_is_not_a_list_of_known_blocks_is_refused_with_where() {
    assert_eq!(refused_at(json!({ "heading": "x" })), "view");
    assert_eq!(refused_at(json!([{ "heading": "ok" }, { "script": "alert(1)" }])), "view[1]");
    assert_eq!(refused_at(json!([{ "heading": "a", "text": "b" }])), "view[0]");
    assert_eq!(refused_at(json!([{ "number": { "label": "x", "value": "12" } }])), "view[0].number.value");
    assert_eq!(refused_at(json!([{ "number": { "label": "x", "value": 1, "style": "red" } }])), "view[0].number.style");
    let err = check(json!([{ "chart": { "kind": "pie", "title": "t", "x": ["a"], "series": [] } }])).unwrap_err();
    assert_eq!(err.at, "view[0].chart.kind");
    assert!(err.to_string().contains("unknown variant `pie`"), "{err}");
    assert_eq!(refused_at(json!([{ "table": { "columns": ["a"], "rows": [[true]] } }])), "view[0].table.rows[0][0]");
}

#[test]
fn markup_links_and_control_characters_are_refused() {
    for (text, problem) in [
        ("<script>alert(1)</script>", "markup"),
        ("<img src=x onerror=alert(1)>", "markup"),
        ("</p><p>", "markup"),
        ("<!-- hidden -->", "markup"),
        ("Claim your bonus at https://evil.example", "link"),
        ("see www.evil.example", "link"),
        ("JavaScript:alert(1)", "link"),
        ("bell\u{7}", "U+0007"),
        ("1\u{202E}00", "U+202E"),
        ("new\nline", "U+000A"),
    ] {
        let err = check(json!([{ "heading": text }])).unwrap_err();
        assert_eq!(err.at, "view[0].heading", "{text:?}");
        assert!(err.problem.contains(problem), "{text:?}: {}", err.problem);
    }
    // Line breaks are allowed in a paragraph, and a lone `<` or `>` is text.
    assert!(check(json!([{ "text": "a\nb: < 5 and > 3" }])).is_ok());
    let err = check(json!([{ "table": { "columns": ["a"], "rows": [["ok"], ["<b>x</b>"]] } }])).unwrap_err();
    assert_eq!(err.at, "view[0].table.rows[1][0]");
}

#[test]
fn sizes_are_capped() {
    let many: Vec<_> = (0..=MAX_BLOCKS).map(|_| json!({ "heading": "h" })).collect();
    assert_eq!(refused_at(json!(many)), "view");
    assert_eq!(refused_at(json!([{ "heading": "h".repeat(MAX_SHORT_CHARS + 1) }])), "view[0].heading");
    assert!(check(json!([{ "text": "t".repeat(MAX_TEXT_CHARS) }])).is_ok());
    assert_eq!(refused_at(json!([{ "text": "t".repeat(MAX_TEXT_CHARS + 1) }])), "view[0].text");
    let x: Vec<String> = (0..=MAX_CHART_POINTS).map(|i| i.to_string()).collect();
    let values = vec![1.0; x.len()];
    assert_eq!(
        refused_at(
            json!([{ "chart": { "kind": "line", "title": "t", "x": x, "series": [{ "name": "s", "values": values }] } }])
        ),
        "view[0].chart.x"
    );
    let rows = vec![json!(["r"]); MAX_TABLE_ROWS + 1];
    assert_eq!(refused_at(json!([{ "table": { "columns": ["c"], "rows": rows } }])), "view[0].table.rows");
    // Each block within its caps, the whole view beyond MAX_VALUES.
    let x: Vec<String> = (0..MAX_CHART_POINTS).map(|i| i.to_string()).collect();
    let series: Vec<_> =
        (0..MAX_CHART_SERIES).map(|s| json!({ "name": s.to_string(), "values": vec![1.0; x.len()] })).collect();
    let chart = json!({ "chart": { "kind": "bar", "title": "t", "x": x, "series": series } });
    assert!(check(json!([chart.clone()])).is_ok());
    let five = json!([chart.clone(), chart.clone(), chart.clone(), chart.clone(), chart]);
    let Err(refused) = check(five) else { panic!("a view beyond MAX_VALUES is refused") };
    assert!(refused.problem.contains("20000"), "{refused}");
}

#[test]
fn shapes_must_agree() {
    let err = check(json!([{ "chart": { "kind": "bar", "title": "t", "x": ["a", "b"],
        "series": [{ "name": "s", "values": [1] }] } }]))
    .unwrap_err();
    assert_eq!((err.at.as_str(), err.problem.as_str()), ("view[0].chart.series[0].values", "1 values for 2 x labels"));
    assert_eq!(refused_at(json!([{ "table": { "columns": ["a", "b"], "rows": [["x"]] } }])), "view[0].table.rows[0]");
    assert_eq!(refused_at(json!([{ "table": { "columns": [], "rows": [] } }])), "view[0].table.columns");
    assert_eq!(
        refused_at(
            json!([{ "chart": { "kind": "stacked-bar", "title": "t", "x": ["a"], "series": [{ "name": "s", "values": [-1] }] } }])
        ),
        "view[0].chart.series[0].values"
    );
    assert_eq!(
        refused_at(json!([{ "number": { "label": "x", "value": 1, "versus": "last year" } }])),
        "view[0].number"
    );
}

#[test]
fn deep_nesting_is_refused_not_recursed_into() {
    let mut deep = json!("bottom");
    for _ in 0..100 {
        deep = json!([deep]);
    }
    assert_eq!(refused_at(json!([{ "text": deep }])), "view[0].text");
    let err = check(json!([{ "table": { "columns": ["a"], "rows": [[deep]] } }])).unwrap_err();
    assert_eq!(err.at, "view[0].table.rows[0][0]");
}

#[test]
fn a_view_is_drawn_as_text() {
    let view = check(json!([
        { "heading": "March" },
        { "number": { "label": "So far", "value": 207.0, "unit": "kWh", "delta": 28.04, "versus": "last year" } },
        { "table": { "columns": ["category", "EUR"], "rows": [["food", 412.5], ["rent", 1000]] } },
        days_chart(),
    ]))
    .unwrap()
    .unwrap();
    let text = text::render(&view, 60);
    let expected = "\
March
=====

So far: 207 kWh (+28.04 % on last year)

category    EUR
--------  -----
food      412.5
rent       1000

Energy per day (kWh)
2026-03-01 │████████████████████████████████████ 12.9
2026-03-02 │ –
2026-03-03 │███████████████████████ 8.25
";
    assert_eq!(text, expected);
}

#[test]
fn stacked_and_grouped_bars_say_which_series_is_which() {
    let view = check(json!([
        { "chart": { "kind": "stacked-bar", "title": "CO2", "unit": "kg", "x": ["Jan", "Feb"], "series": [
            { "name": "car", "values": [2, 1] }, { "name": "bus", "values": [2, null] }] } },
        { "chart": { "kind": "bar", "title": "kWh", "x": ["Mar"], "series": [
            { "name": "2026", "values": [4] }, { "name": "2025", "values": [2] }] } },
    ]))
    .unwrap()
    .unwrap();
    let text = text::render(&view, 30);
    assert!(text.contains("█ car   ▓ bus"), "{text}");
    assert!(text.contains("Jan │███████▓▓▓▓▓▓▓ 4\nFeb │███ 1"), "{text}");
    assert!(text.contains("Mar 2026  │██████████ 4\n    2025  │█████ 2"), "{text}");
}

#[test]
fn numbers_read_like_figures() {
    assert_eq!(text::number(12.0), "12");
    assert_eq!(text::number(12.345), "12.35");
    assert_eq!(text::number(-0.001), "0");
    assert_eq!(text::number(-3.5), "-3.5");
}

#[test]
fn a_long_chart_is_drawn_as_sparklines() {
    let x: Vec<String> = (1..=40).map(|d| format!("d{d:02}")).collect();
    let values: Vec<Option<f64>> = (1..=40).map(|d| if d == 3 { None } else { Some(f64::from(d % 8)) }).collect();
    let view = check(json!([{ "chart": { "kind": "line", "title": "Daily", "unit": "kWh", "x": x,
        "series": [{ "name": "kWh", "values": values }] } }]))
    .unwrap()
    .unwrap();
    let text = text::render(&view, 30);
    let lines: Vec<&str> = text.lines().collect();
    // 30 columns: two labels of 3 and two spaces leave 22 characters a row.
    assert_eq!(lines[0], "Daily (kWh)");
    assert_eq!(lines[1], "d01 ▂▃ ▅▆▇█▁▂▃▄▅▆▇█▁▂▃▄▅▆▇ d22");
    assert_eq!(lines[2], "d23 █▁▂▃▄▅▆▇█▁▂▃▄▅▆▇█▁ d40");
    assert_eq!(lines[3], "(from 0 to 7 kWh; one character per label)");
    assert_eq!(lines.len(), 4);
}
