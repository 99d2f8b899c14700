//! The fixtures do what their documentation says: `spawn_app` serves the API on loopback to
//! its administrator's credentials only, and the webhook receiver keeps what it gets and
//! answers as it was told to.

use rollscale_test_support::server::spawn_app;
use rollscale_test_support::webhook::WebhookReceiver;

#[tokio::test]
async fn spawn_app_serves_the_api_to_its_administrator() {
    let app = spawn_app().await;
    assert!(app.base_url.starts_with("http://127.0.0.1:"), "{}", app.base_url);
    let client = reqwest::Client::new();
    let health = client.get(format!("{}/healthz", app.base_url)).send().await.expect("the server answers");
    assert_eq!(health.status().as_u16(), 200);

    let groups = format!("{}/v1/scaling-groups", app.base_url);
    let refused = client.get(&groups).send().await.expect("the server answers");
    assert_eq!(refused.status().as_u16(), 401, "no credentials, no answer");
    let listed = client.get(&groups).bearer_auth(&app.token).send().await.expect("the server answers");
    assert_eq!(listed.status().as_u16(), 200);
    let listed: serde_json::Value = listed.json().await.expect("JSON");
    assert_eq!(listed["items"], serde_json::json!([]), "a fresh store");

    // The key is the administrator's: what it creates over the API is in the service.
    let created = client
        .post(format!("{}/v1/images", app.base_url))
        .bearer_auth(&app.token)
        .json(&serde_json::json!({"id": "img"}))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(created.status().as_u16(), 200);
    let images = app.service.images().await.expect("images");
    assert_eq!(images.iter().map(|image| image.id.as_str()).collect::<Vec<_>>(), ["img"]);
    assert!(app.key_id.starts_with("LTAI") && !app.secret.is_empty(), "{}", app.key_id);
}

#[tokio::test]
async fn the_receiver_keeps_each_request_and_fails_when_told() {
    let receiver = WebhookReceiver::failing(&[503]);
    let client = reqwest::Client::new();
    let post = |body: &'static str| {
        client.post(receiver.url("/hook?token=t")).header("x-rollscale-delivery", "d-1").body(body).send()
    };
    assert_eq!(post("one").await.expect("an answer").status().as_u16(), 503);
    assert_eq!(post("two").await.expect("an answer").status().as_u16(), 200);
    receiver.fail_next(&[500]);
    assert_eq!(post("three").await.expect("an answer").status().as_u16(), 500);
    assert_eq!(post("four").await.expect("an answer").status().as_u16(), 200);
    let got = receiver.got();
    let bodies: Vec<&str> = got.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["one", "two", "three", "four"]);
    assert!(got.iter().all(|r| r.request_line.starts_with("POST /hook?token=t ")), "{got:?}");
    assert!(got.iter().all(|r| r.delivery.as_deref() == Some("d-1")), "{got:?}");

    let redirecting = WebhookReceiver::redirecting("http://127.0.0.1:1/");
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let answer = no_redirects.get(redirecting.url("/x")).send().await.expect("an answer");
    assert_eq!(answer.status().as_u16(), 302);
    assert_eq!(answer.headers()["location"], "http://127.0.0.1:1/");
}
