use super::*;

#[test]
fn error_codes_come_from_the_cli_the_library_and_io_alike() {
    let e = coded(ErrorCode::OutputExists, "out.png already exists").context("cannot stamp a.png");
    let info = ErrorInfo::of(&e);
    assert_eq!(info.code, ErrorCode::OutputExists);
    assert_eq!(info.message, "cannot stamp a.png: out.png already exists");

    let e = anyhow::Error::new(hallmark::Error::TooLarge("9x9".into())).context("reading x");
    assert_eq!(ErrorInfo::of(&e).code, ErrorCode::TooLarge);

    let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
    assert_eq!(
        ErrorInfo::of(&anyhow::Error::new(io)).code,
        ErrorCode::NotFound
    );

    let bad_json = serde_json::from_str::<Value>("{").unwrap_err();
    assert_eq!(
        ErrorInfo::of(&anyhow::Error::new(bad_json)).code,
        ErrorCode::InvalidInput
    );
    assert_eq!(
        ErrorInfo::of(&anyhow::anyhow!("--max-tokens must be at least 1")).code,
        ErrorCode::InvalidParameter
    );
}

#[test]
fn version_1_restores_the_old_shapes() {
    let mut v = serde_json::json!({
        "schema": REPORT,
        "file": "a.png",
        "c2pa": {"soft_bindings": [{"alg": "x", "value": "00ff10"}]},
    });
    to_v1(&mut v);
    assert_eq!(v["schema"], "hallmark.report/1");
    assert_eq!(
        v["c2pa"]["soft_bindings"][0]["value"],
        serde_json::json!([0, 255, 16])
    );

    let mut e = item_value(STAMP, "a.png", &Failed::new(&anyhow::anyhow!("bad")));
    assert_eq!(e["error"]["code"], "invalid_parameter");
    to_v1(&mut e);
    assert_eq!(e["error"], "bad");
    assert_eq!(e["schema"], STAMP);
}

#[test]
fn every_schema_pins_its_name_and_allows_the_error_shape() {
    for (name, s) in schemas() {
        let text = serde_json::to_string(&s).unwrap();
        assert!(text.contains(&format!("\"const\":\"{name}\"")), "{name}");
        assert!(text.contains("\"ErrorInfo\""), "{name} has no error shape");
    }
    // The document lists them all.
    let doc = schema_document();
    assert_eq!(doc["schemas"].as_object().unwrap().len(), schemas().len());
}
