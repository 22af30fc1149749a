//! Several accounts on one sandbox, on every provider's face: each `--key`
//! (on gcui, each `Cookie`) spends its own credits, keeps its own rate
//! limit and owns its tasks, and the stats tell each one's share. This is
//! the host a key pool is tested against.
//!
//! Each test runs the same story on every face through [`Wire`], which
//! knows only each provider's routes and words (from `API.md`), never
//! batchgen's client. Rate limits are `1/h`, so "a quick second request"
//! is refused whatever the machine's speed: no test depends on timing.

use batchgen::job::Provider;
use batchgen::sandbox::{KeySpec, KeyStats, Sandbox, SandboxConfig};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

use super::fetch_stats;

/// The accounts of these tests. On gcui they are cookie strings.
const A: &str = "sk-account-a";
const B: &str = "sk-account-b";

/// Every provider the sandbox imitates.
const PROVIDERS: [Provider; 5] = [
    Provider::Udioapi,
    Provider::Sunoapi,
    Provider::Kie,
    Provider::Gcui,
    Provider::Newapi,
];

/// What a provider answered, read loosely.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
}

/// One provider's routes and words, as `API.md` gives them.
struct Wire<'s> {
    provider: Provider,
    sb: &'s Sandbox,
    http: reqwest::Client,
}

impl Wire<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sb.base_url())
    }

    /// The request, presented as `key`'s: a bearer key, or gcui's cookie.
    fn as_account(&self, req: RequestBuilder, key: &str) -> RequestBuilder {
        match self.provider {
            Provider::Gcui => req.header(reqwest::header::COOKIE, key),
            _ => req.bearer_auth(key),
        }
    }

    async fn send(&self, req: RequestBuilder, key: &str) -> Answer {
        let resp = self.as_account(req, key).send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer { status, body }
    }

    /// A submit as `key`'s.
    async fn submit(&self, key: &str) -> Answer {
        let (path, body) = match self.provider {
            Provider::Udioapi => ("/api/v2/generate", json!({"prompt": "rain on a tin roof"})),
            Provider::Sunoapi | Provider::Kie => (
                "/api/v1/generate",
                json!({"customMode": false, "instrumental": false, "model": "V5",
                       "prompt": "rain on a tin roof",
                       "callBackUrl": "https://batchgen.invalid/callback"}),
            ),
            Provider::Gcui => ("/api/generate", json!({"prompt": "rain on a tin roof"})),
            Provider::Newapi => (
                "/suno/submit/music",
                json!({"gpt_description_prompt": "rain on a tin roof", "mv": "chirp-crow"}),
            ),
        };
        self.send(self.http.post(self.url(path)).json(&body), key)
            .await
    }

    /// The task id of an accepted submit (gcui: its clip ids, joined).
    fn task_id(&self, a: &Answer) -> String {
        let id = match self.provider {
            Provider::Udioapi => a.body["workId"].as_str().map(str::to_owned),
            Provider::Sunoapi | Provider::Kie => {
                a.body["data"]["taskId"].as_str().map(str::to_owned)
            }
            Provider::Gcui => a.body.as_array().map(|clips| {
                let ids: Vec<&str> = clips.iter().filter_map(|c| c["id"].as_str()).collect();
                ids.join(",")
            }),
            Provider::Newapi => a.body["data"].as_str().map(str::to_owned),
        };
        id.unwrap_or_else(|| panic!("{}: not accepted: {a:?}", self.provider))
    }

    /// The body code of an error on sunoapi and kie (HTTP 200 there by
    /// default), else the HTTP status.
    fn code(&self, a: &Answer) -> u64 {
        match self.provider {
            Provider::Sunoapi | Provider::Kie => {
                assert_eq!(a.status, StatusCode::OK, "errors travel with HTTP 200");
                a.body["code"].as_u64().unwrap_or(200)
            }
            _ => a.status.as_u16().into(),
        }
    }

    /// The provider's documented "no credits" code.
    fn no_credits(&self) -> u64 {
        match self.provider {
            Provider::Udioapi | Provider::Kie | Provider::Gcui => 402,
            Provider::Sunoapi => 429,
            Provider::Newapi => 403,
        }
    }

    /// The provider's "rate limited" code.
    fn rate_limited(&self) -> u64 {
        match self.provider {
            Provider::Sunoapi => 430,
            _ => 429,
        }
    }

    /// Every poll route's view of `task` as `key`'s: whether each found it.
    async fn polls_find(&self, task: &str, key: &str) -> Vec<bool> {
        let get = |path: String| self.send(self.http.get(self.url(&path)), key);
        match self.provider {
            Provider::Udioapi => {
                let v2 = get(format!("/api/v2/feed?workId={task}")).await;
                let legacy = get(format!("/api/feed?workId={task}")).await;
                let posted = self
                    .send(
                        self.http
                            .post(self.url("/api/feed"))
                            .json(&json!({"workId": task})),
                        key,
                    )
                    .await;
                [v2, legacy, posted]
                    .iter()
                    .map(|a| match a.status.as_u16() {
                        200 => true,
                        404 => false,
                        _ => panic!("udioapi feed: {a:?}"),
                    })
                    .collect()
            }
            Provider::Sunoapi | Provider::Kie => {
                let a = get(format!("/api/v1/generate/record-info?taskId={task}")).await;
                vec![match self.code(&a) {
                    200 => a.body["data"]["taskId"] == task,
                    404 => false,
                    _ => panic!("record-info: {a:?}"),
                }]
            }
            Provider::Gcui => {
                let a = get(format!("/api/get?ids={task}")).await;
                assert_eq!(a.status, StatusCode::OK, "{a:?}");
                let all = get("/api/get".into()).await;
                let listed = all.body.as_array().unwrap();
                vec![
                    a.body.as_array().unwrap().len() == 2,
                    listed.len() == 2 && task.contains(listed[0]["id"].as_str().unwrap()),
                ]
            }
            Provider::Newapi => {
                let one = get(format!("/suno/fetch/{task}")).await;
                let found_one = match one.status.as_u16() {
                    200 => one.body["data"]["task_id"] == task,
                    400 => {
                        assert_eq!(one.body["code"], "task_not_exist", "{one:?}");
                        false
                    }
                    _ => panic!("fetch: {one:?}"),
                };
                let many = self
                    .send(
                        self.http
                            .post(self.url("/suno/fetch"))
                            .json(&json!({"ids": [task], "action": "MUSIC"})),
                        key,
                    )
                    .await;
                assert_eq!(many.status, StatusCode::OK, "{many:?}");
                vec![found_one, many.body["data"].as_array().unwrap().len() == 1]
            }
        }
    }

    /// The credits left that the provider's credits route tells `key`.
    async fn credits_left(&self, key: &str) -> u64 {
        let get = |path: &str| self.send(self.http.get(self.url(path)), key);
        let a = match self.provider {
            Provider::Udioapi => get("/api/v2/credits").await,
            Provider::Sunoapi => get("/api/v1/generate/credit").await,
            Provider::Kie => get("/api/v1/chat/credit").await,
            Provider::Gcui => get("/api/get_limit").await,
            Provider::Newapi => {
                let total = get("/v1/dashboard/billing/subscription").await;
                let usage = get("/v1/dashboard/billing/usage").await;
                let total = total.body["hard_limit_usd"].as_f64().unwrap();
                let cents = usage.body["total_usage"].as_f64().unwrap();
                let credits = (total - cents / 100.0) * 500_000.0;
                return credits.round() as u64;
            }
        };
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        let left = match self.provider {
            Provider::Udioapi => &a.body["data"]["credits"],
            Provider::Sunoapi | Provider::Kie => &a.body["data"],
            _ => &a.body["credits_left"],
        };
        left.as_u64().unwrap_or_else(|| panic!("{a:?}"))
    }
}

async fn start(provider: Provider, keys: &[&str], config: SandboxConfig) -> Sandbox {
    let config = SandboxConfig {
        provider,
        keys: keys.iter().map(|k| KeySpec::parse(k).unwrap()).collect(),
        ..config
    };
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn wire(provider: Provider, sb: &Sandbox) -> Wire<'_> {
    Wire {
        provider,
        sb,
        http: reqwest::Client::new(),
    }
}

#[tokio::test]
async fn each_account_spends_its_own_credits() {
    for provider in PROVIDERS {
        // A can pay for one task (10 credits); B has the global balance.
        let a_spec = format!("{A},credits=10");
        let sb = start(provider, &[&a_spec, B], SandboxConfig::default()).await;
        let w = wire(provider, &sb);
        assert_eq!(sb.key(), A, "the first key is the default account");
        assert_eq!(sb.keys().collect::<Vec<_>>(), [A, B]);

        w.task_id(&w.submit(A).await);
        let refused = w.submit(A).await;
        assert_eq!(w.code(&refused), w.no_credits(), "{provider}: {refused:?}");
        w.task_id(&w.submit(B).await);
        w.task_id(&w.submit(B).await);

        assert_eq!(w.credits_left(A).await, 0, "{provider}");
        assert_eq!(w.credits_left(B).await, 1_000_000 - 20, "{provider}");
        let stats = fetch_stats(&sb).await;
        assert_eq!((stats.accepted, stats.credits_used), (3, 30), "{provider}");
        let a = stats.by_key[A];
        assert_eq!(
            (a.requests, a.accepted, a.no_credits, a.credits_left),
            (2, 1, 1, 0),
            "{provider}: {a:?}"
        );
        assert_eq!((a.credits, a.credits_used), (10, 10));
        let b = stats.by_key[B];
        assert_eq!(
            (b.requests, b.accepted, b.no_credits, b.credits_left),
            (2, 2, 0, 1_000_000 - 20),
            "{provider}: {b:?}"
        );

        // A reset gives every account its whole balance back.
        sb.reset();
        assert_eq!(w.credits_left(A).await, 10, "{provider}");
        assert_eq!(w.credits_left(B).await, 1_000_000, "{provider}");
        w.task_id(&w.submit(A).await);
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn a_task_is_its_accounts_alone() {
    for provider in PROVIDERS {
        let sb = start(provider, &[A, B], SandboxConfig::default()).await;
        let w = wire(provider, &sb);
        let task = w.task_id(&w.submit(A).await);
        let polls = w.polls_find(&task, A).await;
        assert!(polls.iter().all(|&found| found), "{provider}: {polls:?}");
        let foreign = w.polls_find(&task, B).await;
        assert!(
            foreign.iter().all(|&found| !found),
            "{provider}: B sees A's task: {foreign:?}"
        );
        // One request per route asked, counted for the key that asked.
        let stats = sb.stats();
        let asked = polls.len() as u64;
        assert_eq!(stats.by_key[A].feed_requests, asked, "{provider}");
        assert_eq!(stats.by_key[B].feed_requests, asked, "{provider}");
        assert_eq!(stats.feed_requests, 2 * asked, "{provider}");
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn an_unknown_key_is_still_refused() {
    for provider in PROVIDERS {
        let sb = start(provider, &[A, B], SandboxConfig::default()).await;
        let w = wire(provider, &sb);
        let refused = w.submit("sk-nobody").await;
        assert_eq!(w.code(&refused), 401, "{provider}: {refused:?}");
        let stats = sb.stats();
        assert_eq!((stats.requests, stats.accepted), (1, 0));
        assert!(
            stats.by_key.values().all(|k| k.requests == 0),
            "{provider}: a stranger's request is no account's"
        );
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn rate_limits_are_per_account() {
    for provider in PROVIDERS {
        // A takes the global 1/h; B sets itself free of it.
        let config = SandboxConfig {
            rate: Some("1/h".parse().unwrap()),
            ..SandboxConfig::default()
        };
        let b_spec = format!("{B},rate=unlimited");
        let sb = start(provider, &[A, &b_spec], config).await;
        let w = wire(provider, &sb);
        w.task_id(&w.submit(A).await);
        let limited = w.submit(A).await;
        assert_eq!(
            w.code(&limited),
            w.rate_limited(),
            "{provider}: {limited:?}"
        );
        for _ in 0..3 {
            w.task_id(&w.submit(B).await);
        }
        let stats = sb.stats();
        assert_eq!(stats.rate_limited, 1, "{provider}");
        assert_eq!(
            (stats.by_key[A].rate_limited, stats.by_key[A].accepted),
            (1, 1),
            "{provider}"
        );
        assert_eq!(
            (stats.by_key[B].rate_limited, stats.by_key[B].accepted),
            (0, 3),
            "{provider}"
        );
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn gcui_the_cookie_chooses_the_account() {
    let a_spec = format!("{A},credits=10");
    let sb = start(Provider::Gcui, &[&a_spec, B], SandboxConfig::default()).await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", sb.base_url());
    let body = json!({"prompt": "rain on a tin roof"});

    // No Cookie: the first account (the server's own cookie).
    let first = http
        .post(url("/api/generate"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let limit: Value = http
        .get(url("/api/get_limit"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(limit["credits_left"], 0);
    assert_eq!(limit["monthly_limit"], 10);
    let w = wire(Provider::Gcui, &sb);
    assert_eq!(w.credits_left(B).await, 1_000_000);
    assert_eq!(sb.stats().by_key[A].accepted, 1);

    // A cookie no account has: gcui's error shape, with 401, on every route.
    for (method, path) in [
        (reqwest::Method::POST, "/api/generate"),
        (reqwest::Method::GET, "/api/get"),
        (reqwest::Method::GET, "/api/get_limit"),
    ] {
        let resp = http
            .request(method, url(path))
            .header(reqwest::header::COOKIE, "__client=someone-else")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        let error: Value = resp.json().await.unwrap();
        assert!(
            error["error"]
                .as_str()
                .is_some_and(|m| m.contains("Cookie")),
            "{error}"
        );
    }
    assert_eq!(sb.stats().accepted, 1);
    sb.shutdown().await;

    // One account: any cookie is its, as before accounts existed.
    let sb = start(Provider::Gcui, &[A], SandboxConfig::default()).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/generate", sb.base_url()))
        .header(reqwest::header::COOKIE, "__client=anything")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(sb.stats().by_key[A].accepted, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn without_keys_one_account_is_made_up() {
    let sb = Sandbox::start("127.0.0.1:0".parse().unwrap(), SandboxConfig::default())
        .await
        .unwrap();
    let key = sb.key().to_owned();
    assert!(key.starts_with("sk-sandbox-"), "{key}");
    let stats = sb.stats();
    assert_eq!(
        stats.by_key,
        [(
            key,
            KeyStats {
                credits: 1_000_000,
                credits_left: 1_000_000,
                ..KeyStats::default()
            }
        )]
        .into()
    );
    sb.shutdown().await;
}
