//! The route table is the single source: every route answers, every token route refuses a
//! request without a token, and the OpenAPI document describes exactly these routes.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use maestro::http::router::{Auth, openapi, routes};

use crate::support::TestApp;

fn concrete(path: &str) -> String {
    path.replace("{id}", "ex_01aaaaaaaaaaaaaaaaaaaaaaaa")
        .replace("{digest}", &format!("sha256:{}", "0".repeat(64)))
}

#[tokio::test]
async fn every_route_answers_and_token_routes_require_a_token() {
    let t = TestApp::new().await;
    let table = routes();
    assert!(table.len() >= 15);
    for r in &table {
        let req = Request::builder()
            .method(r.method.clone())
            .uri(concrete(r.path))
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let resp = t.send(req).await;
        assert_ne!(
            resp.json["code"], "route_not_found",
            "{} {}",
            r.method, r.path
        );
        assert_ne!(
            resp.json["code"], "method_not_allowed",
            "{} {}",
            r.method, r.path
        );
        match r.auth {
            Auth::Token | Auth::Shared | Auth::Appliance => assert_eq!(
                resp.status,
                StatusCode::UNAUTHORIZED,
                "{} {} must need a token",
                r.method,
                r.path
            ),
            Auth::Console => assert_eq!(
                resp.status,
                StatusCode::SEE_OTHER,
                "{} {} must send people to the login page",
                r.method,
                r.path
            ),
            Auth::Public | Auth::Page => assert_ne!(
                resp.status,
                StatusCode::UNAUTHORIZED,
                "{} {}",
                r.method,
                r.path
            ),
        }
    }
    t.stop().await;
}

#[test]
fn openapi_describes_exactly_the_routes() {
    let doc = openapi();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut described = Vec::new();
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            described.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    // The console's HTML pages are not part of the API document.
    let mut table: Vec<String> = routes()
        .iter()
        .filter(|r| !matches!(r.auth, Auth::Console | Auth::Page))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    described.sort();
    table.sort();
    assert_eq!(described, table);
    // Every $ref resolves.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &part[..part.find('"').unwrap()];
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
    // Token routes declare bearer security; public ones none.
    for r in routes().into_iter().filter(|r| {
        matches!(
            r.auth,
            Auth::Token | Auth::Shared | Auth::Appliance | Auth::Public
        )
    }) {
        let op = &doc["paths"][r.path][r.method.as_str().to_lowercase()];
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        assert_eq!(secured, r.auth != Auth::Public, "{} {}", r.method, r.path);
    }
}
