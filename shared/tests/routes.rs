//! The route set is written in three places that must agree: `shared::api::ROUTES` (which the
//! Lambda routers and the local gateway are built from), `template.yaml` (what API Gateway routes
//! to which function in AWS) and `openapi.yaml` (what clients are told). This test reads the two
//! files and compares.

use serde_yaml_ng::Value;
use shared::api::{Function, ROUTES};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn workspace_file(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

fn code_routes() -> BTreeSet<(String, String, String)> {
    ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned(), r.function.name().to_owned())).collect()
}

/// (method, path) of every route the template serves without the authorizer.
fn template_public_routes(template: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (_, resource) in template["Resources"].as_mapping().expect("Resources") {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for (_, event) in events {
            let p = &event["Properties"];
            if event["Type"].as_str() == Some("HttpApi") && p["Auth"]["Authorizer"].as_str() == Some("NONE") {
                routes.insert((
                    p["Method"].as_str().expect("Method").to_uppercase(),
                    p["Path"].as_str().expect("Path").to_owned(),
                ));
            }
        }
    }
    routes
}

#[test]
fn exactly_the_public_routes_go_without_the_authorizer() {
    let template = workspace_file("template.yaml");
    let public: BTreeSet<_> =
        ROUTES.iter().filter(|r| r.public).map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    assert_eq!(template_public_routes(&template), public);
    assert!(!public.is_empty(), "the console's sign-in route is public");
}

/// (method, path, function directory) for every HttpApi event of every function in the template.
fn template_routes(template: &Value) -> BTreeSet<(String, String, String)> {
    let mut routes = BTreeSet::new();
    let resources = template["Resources"].as_mapping().expect("Resources");
    for (_, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let code_uri = resource["Properties"]["CodeUri"].as_str().expect("CodeUri");
        let function = code_uri.strip_prefix("functions/").expect("CodeUri under functions/");
        let Some(events) = resource["Properties"]["Events"].as_mapping() else { continue };
        for (_, event) in events {
            if event["Type"].as_str() == Some("HttpApi") {
                let p = &event["Properties"];
                routes.insert((
                    p["Method"].as_str().expect("Method").to_uppercase(),
                    p["Path"].as_str().expect("Path").to_owned(),
                    function.to_owned(),
                ));
            }
        }
    }
    routes
}

#[test]
fn template_routes_each_path_to_the_function_the_code_names() {
    let template = workspace_file("template.yaml");
    assert_eq!(template_routes(&template), code_routes());
}

#[test]
fn openapi_documents_exactly_the_routes_the_code_serves() {
    let openapi = workspace_file("openapi.yaml");
    let mut documented = BTreeSet::new();
    for (path, item) in openapi["paths"].as_mapping().expect("paths") {
        for (method, _) in item.as_mapping().expect("path item") {
            let method = method.as_str().expect("method").to_uppercase();
            if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                documented.insert((method, path.as_str().expect("path").to_owned()));
            }
        }
    }
    let served: BTreeSet<_> = ROUTES.iter().map(|r| (r.method.to_owned(), r.path.to_owned())).collect();
    assert_eq!(documented, served);
}

#[test]
fn every_function_in_the_route_table_is_a_crate_and_a_template_function() {
    let template = workspace_file("template.yaml");
    let uris: BTreeSet<String> = template["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|r| r["Properties"]["CodeUri"].as_str().expect("CodeUri").to_owned())
        .collect();
    for function in Function::ALL {
        let dir = format!("functions/{}", function.name());
        assert!(uris.contains(&dir), "template.yaml has no function with CodeUri {dir}");
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(&dir).join("Cargo.toml");
        assert!(manifest.exists(), "{} is missing", manifest.display());
    }
    for uri in &uris {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(uri).join("Cargo.toml");
        assert!(manifest.exists(), "template.yaml names {uri}, which is not a crate");
    }
}

#[test]
fn every_function_has_sample_events() {
    let template = workspace_file("template.yaml");
    for resource in template["Resources"].as_mapping().expect("Resources").values() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let uri = resource["Properties"]["CodeUri"].as_str().expect("CodeUri");
        let name = uri.strip_prefix("functions/").expect("under functions/");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
        let count = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(count > 0, "events/{name}/ has no sample event");
    }
}

#[test]
fn every_route_has_a_sample_event() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
    let mut covered = BTreeSet::new();
    for function in Function::ALL {
        for file in std::fs::read_dir(dir.join(function.name())).expect("events dir") {
            let text = std::fs::read_to_string(file.expect("entry").path()).expect("read event");
            let event: serde_json::Value = serde_json::from_str(&text).expect("event JSON");
            if let Some(route_key) = event["routeKey"].as_str() {
                covered.insert(route_key.to_owned());
            }
        }
    }
    for route in ROUTES {
        let key = format!("{} {}", route.method, route.path);
        assert!(covered.contains(&key), "no sample event in events/ for {key}");
    }
}
