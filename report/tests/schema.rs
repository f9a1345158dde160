//! The JSON contract: reports survive a serde round trip, optional fields may be omitted, and a
//! reader accepts fields it does not know yet (later versions only ADD fields, see model.rs).

mod common;

use common::{fixture, load};
use fdguard_report::FindingKind;
use fdguard_report::{Report, SCHEMA_VERSION};
use serde_json::Value;

const FIXTURES: [&str; 3] = [
    "grpc_client.json",
    "grpc_client_earlier.json",
    "exit_report.json",
];

#[test]
fn fixtures_are_schema_version_1() {
    for name in FIXTURES {
        assert_eq!(load(name).schema_version, SCHEMA_VERSION, "{name}");
    }
}

#[test]
fn serde_round_trip() {
    for name in FIXTURES {
        let report = load(name);
        let compact = serde_json::to_string(&report).unwrap();
        let pretty = serde_json::to_string_pretty(&report).unwrap();
        assert_eq!(
            serde_json::from_str::<Report>(&compact).unwrap(),
            report,
            "{name} (compact)"
        );
        assert_eq!(
            serde_json::from_str::<Report>(&pretty).unwrap(),
            report,
            "{name} (pretty)"
        );
    }
}

#[test]
fn serialized_field_names_are_the_documented_ones() {
    let value = serde_json::to_value(load("grpc_client.json")).unwrap();
    let socket = &value["sockets"][1];
    assert_eq!(
        socket["type"], "stream",
        "sock_type is spelled `type` in JSON"
    );
    assert_eq!(socket["role"], "client");
    assert_eq!(socket["origin"], "created");
    assert_eq!(value["trigger"], "signal");
    assert_eq!(value["findings"][0]["kind"], "duplicate_backend");
    assert_eq!(value["summary"]["findings"]["peer_closed"], 1);
}

#[test]
fn unknown_fields_are_ignored() {
    let text = std::fs::read_to_string(fixture("grpc_client.json")).unwrap();
    let mut value: Value = serde_json::from_str(&text).unwrap();
    value["added_in_schema_2"] = serde_json::json!({"anything": [1, 2, 3]});
    value["fd_budget"]["pipes_open"] = 4.into();
    value["sockets"][1]["congestion_window"] = 10.into();
    value["sockets"][1]["stack"][0]["inlined"] = true.into();
    value["findings"][0]["confidence"] = "high".into();
    value["recently_closed"][0]["reason"] = "goaway".into();
    value["summary"]["since_start"] = 12.into();
    let parsed: Report = serde_json::from_value(value).expect("unknown fields must be ignored");
    assert_eq!(parsed, load("grpc_client.json"));
}

#[test]
fn a_finding_kind_from_a_later_version_still_parses_and_renders() {
    let text = std::fs::read_to_string(fixture("grpc_client.json")).unwrap();
    let mut value: Value = serde_json::from_str(&text).unwrap();
    value["findings"][0]["kind"] = "half_open_forever".into();
    let parsed: Report =
        serde_json::from_value(value).expect("unknown kinds must not break readers");
    assert_eq!(parsed.findings[0].kind, FindingKind::Unknown);
    let rendered = fdguard_report::text::render(&parsed);
    assert!(rendered.contains("unknown"), "{rendered}");
}

#[test]
fn optional_fields_may_be_omitted() {
    // exit_report.json leaves out recently_closed, suppressions_used, notes, and most optional
    // socket fields.
    let report = load("exit_report.json");
    assert!(report.recently_closed.is_empty());
    assert!(report.notes.is_empty());
    assert!(report.sockets[0].peer.is_none());
    assert!(report.sockets[0].stack_id.is_none());
}

#[test]
fn a_missing_required_field_is_an_error_that_names_it() {
    let text = std::fs::read_to_string(fixture("exit_report.json")).unwrap();
    let mut value: Value = serde_json::from_str(&text).unwrap();
    value.as_object_mut().unwrap().remove("fd_budget");
    let error = serde_json::from_value::<Report>(value)
        .unwrap_err()
        .to_string();
    assert!(error.contains("fd_budget"), "{error}");
}

#[test]
fn frame_kind_defaults_to_native_and_python_frames_round_trip() {
    use fdguard_report::{Frame, FrameKind};
    // Reports written before `kind` existed: every frame is native.
    let report = load("grpc_client.json");
    assert!(report.sockets.iter().flat_map(|s| s.stack.iter()).count() > 0);
    assert!(
        report
            .sockets
            .iter()
            .flat_map(|s| s.stack.iter())
            .all(|f| f.kind == FrameKind::Native)
    );
    let python: Frame = serde_json::from_str(
        r#"{"ip":"","function":"leak","file":"/srv/app.py","line":12,"kind":"python"}"#,
    )
    .unwrap();
    assert!(python.is_python());
    let value = serde_json::to_value(&python).unwrap();
    assert_eq!(value["kind"], "python");
    assert_eq!(value["ip"], "");
    let native = serde_json::to_value(Frame::default()).unwrap();
    assert_eq!(native["kind"], "native", "always written");
    let later: Frame = serde_json::from_str(r#"{"ip":"0x1","kind":"wasm"}"#).unwrap();
    assert_eq!(later.kind, FrameKind::Unknown);
}
