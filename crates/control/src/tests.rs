//! Tests for request parsing, routing, rendering and the exposition text.

use heimdall_wire::{NameBuf, RecordType};
use serde_json::Value;

use crate::*;
use heimdall_testkit::prometheus as expo;

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

fn parse_one(bytes: &[u8]) -> Result<Option<Request>, HttpError> {
    let mut connection = Connection::default();
    connection.feed(bytes);
    connection.next_request()
}

fn request(bytes: &[u8]) -> Request {
    parse_one(bytes).unwrap().unwrap()
}

fn command(bytes: &[u8]) -> Result<Command, Response> {
    route(&request(bytes))
}

fn flush(query: &str) -> Result<Command, Response> {
    command(format!("POST /cache/flush{query} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
}

// ---- request parsing ----

#[test]
fn parses_simple_get() {
    let req = request(&get("/metrics"));
    assert_eq!(req.method, Method::Get);
    assert_eq!(req.path, "/metrics");
    assert_eq!(req.query, None);
    assert!(req.body.is_empty());
    assert!(req.keep_alive);
}

#[test]
fn byte_by_byte_feeding_yields_one_request_at_the_end() {
    let bytes =
        b"POST /cache/flush?name=a.example HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    let mut connection = Connection::default();
    for (index, byte) in bytes.iter().enumerate() {
        connection.feed(std::slice::from_ref(byte));
        let result = connection.next_request().unwrap();
        if index + 1 < bytes.len() {
            assert!(result.is_none(), "request complete early at byte {index}");
        } else {
            let req = result.unwrap();
            assert_eq!(req.method, Method::Post);
            assert_eq!(req.query.as_deref(), Some("name=a.example"));
            assert_eq!(req.body, b"hello");
        }
    }
    assert_eq!(connection.buffered(), 0);
    assert!(connection.next_request().unwrap().is_none());
}

#[test]
fn pipelined_requests_come_out_in_order() {
    let mut bytes = get("/metrics");
    bytes.extend_from_slice(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    bytes.extend_from_slice(&get("/health"));
    bytes.extend_from_slice(b"GET /stats HTTP/1.1\r\nHo");
    let mut connection = Connection::default();
    connection.feed(&bytes);
    let paths: Vec<String> = std::iter::from_fn(|| connection.next_request().unwrap())
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["/metrics", "/reload", "/health"]);
    assert!(connection.buffered() > 0);
    connection.feed(b"st: x\r\nConnection: close\r\n\r\n");
    let last = connection.next_request().unwrap().unwrap();
    assert_eq!(last.path, "/stats");
    assert!(!last.keep_alive);
}

#[test]
fn body_split_across_reads() {
    let mut connection = Connection::default();
    connection.feed(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234");
    assert!(connection.next_request().unwrap().is_none());
    connection.feed(b"56789");
    assert_eq!(
        connection.next_request().unwrap().unwrap().body,
        b"0123456789"
    );
}

#[test]
fn connection_header_and_version_decide_keep_alive() {
    let close = request(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(!close.keep_alive);
    let mixed =
        request(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, Close\r\n\r\n");
    assert!(!mixed.keep_alive);
    let old = request(b"GET /health HTTP/1.0\r\n\r\n");
    assert!(!old.keep_alive);
    let old_keep = request(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(old_keep.keep_alive);
}

#[test]
fn too_many_headers_is_431() {
    let mut text = String::from("GET /metrics HTTP/1.1\r\nHost: x\r\n");
    for index in 0..40 {
        text.push_str(&format!("X-H{index}: v\r\n"));
    }
    text.push_str("\r\n");
    let error = parse_one(text.as_bytes()).unwrap_err();
    assert_eq!(error, HttpError::HeadersTooLarge);
    assert_eq!(error.response().status, 431);
}

#[test]
fn oversized_header_bytes_are_431_before_the_head_completes() {
    let limits = Limits {
        max_header_bytes: 256,
        ..Limits::default()
    };
    let mut connection = Connection::new(limits);
    connection.feed(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Long: ");
    assert!(connection.next_request().unwrap().is_none());
    connection.feed(&[b'a'; 300]);
    assert_eq!(
        connection.next_request().unwrap_err(),
        HttpError::HeadersTooLarge
    );
    // Complete, but still too long.
    let mut connection = Connection::new(limits);
    let long = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
        "b".repeat(300)
    );
    connection.feed(long.as_bytes());
    assert_eq!(
        connection.next_request().unwrap_err(),
        HttpError::HeadersTooLarge
    );
}

#[test]
fn oversized_body_is_413_without_waiting_for_it() {
    let limits = Limits {
        max_body_bytes: 100,
        ..Limits::default()
    };
    let mut connection = Connection::new(limits);
    connection.feed(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n");
    let error = connection.next_request().unwrap_err();
    assert_eq!(error, HttpError::PayloadTooLarge);
    let response = error.response();
    assert_eq!(response.status, 413);
    assert!(response.close);
    // Exactly at the limit is fine.
    let mut connection = Connection::new(limits);
    connection.feed(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n");
    connection.feed(&[b'z'; 100]);
    assert_eq!(connection.next_request().unwrap().unwrap().body.len(), 100);
    // A length that does not fit in usize.
    let huge = parse_one(
        b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    );
    assert_eq!(huge.unwrap_err(), HttpError::PayloadTooLarge);
}

#[test]
fn malformed_requests_are_400() {
    let cases: &[&[u8]] = &[
        b"G@T /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        b"GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"\x00\x01\x02\r\n\r\n",
    ];
    for case in cases {
        let error = parse_one(case).unwrap_err();
        assert_eq!(error.status(), 400, "{:?}", String::from_utf8_lossy(case));
    }
    // Agreeing duplicate Content-Length values are accepted.
    let ok = request(
        b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
    );
    assert_eq!(ok.body, b"ab");
}

#[test]
fn connection_is_poisoned_after_an_error() {
    let mut connection = Connection::default();
    connection.feed(b"BROKEN\x00 / HTTP/1.1\r\n\r\n");
    assert!(connection.next_request().is_err());
    connection.feed(&get("/metrics"));
    assert!(connection.next_request().is_err());
    assert_eq!(connection.buffered(), 0);
}

// ---- routing ----

#[test]
fn every_route_maps_to_its_command() {
    assert_eq!(command(&get("/metrics")), Ok(Command::Metrics));
    assert_eq!(command(&get("/health")), Ok(Command::Health));
    assert_eq!(command(&get("/stats")), Ok(Command::Stats));
    assert_eq!(
        flush(""),
        Ok(Command::Flush {
            name: None,
            qtype: None
        })
    );
    let reload = command(b"POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(reload, Ok(Command::Reload));
}

#[test]
fn unknown_paths_are_404() {
    for path in [
        "/",
        "/metrics/",
        "/METRICS",
        "/cache",
        "/cache/flush/x",
        "/nope",
    ] {
        assert_eq!(command(&get(path)).unwrap_err().status, 404, "{path}");
    }
}

#[test]
fn wrong_methods_are_405_with_allow() {
    let cases: &[(&[u8], &str)] = &[
        (b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "GET"),
        (b"DELETE /stats HTTP/1.1\r\nHost: x\r\n\r\n", "GET"),
        (b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n", "GET"),
        (b"GET /cache/flush HTTP/1.1\r\nHost: x\r\n\r\n", "POST"),
        (b"PUT /reload HTTP/1.1\r\nHost: x\r\n\r\n", "POST"),
    ];
    for (bytes, allow) in cases {
        let response = command(bytes).unwrap_err();
        assert_eq!(response.status, 405);
        assert_eq!(response.headers, vec![("Allow", (*allow).to_owned())]);
    }
}

#[test]
fn queries_on_plain_routes_are_400() {
    assert_eq!(command(&get("/metrics?x=1")).unwrap_err().status, 400);
    assert_eq!(command(&get("/metrics?")), Ok(Command::Metrics));
}

#[test]
fn operator_routes_map_to_their_commands() {
    assert_eq!(command(&get("/status")), Ok(Command::Status));
    let name = NameBuf::from_presentation("www.example.").unwrap();
    assert_eq!(
        command(&get("/cache/lookup?name=WWW.example.&type=aaaa")),
        Ok(Command::CacheLookup {
            name: name.clone(),
            qtype: RecordType::AAAA
        })
    );
    assert_eq!(
        command(&get("/cache/lookup?name=www.example")),
        Ok(Command::CacheLookup {
            name: name.clone(),
            qtype: RecordType::A
        })
    );
    assert_eq!(
        flush("?name=www.example&type=TXT"),
        Ok(Command::Flush {
            name: Some(name),
            qtype: Some(RecordType::TXT)
        })
    );
    let post = |target: &str| {
        command(
            format!("POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        )
    };
    assert_eq!(
        post("/log-level?level=DEBUG"),
        Ok(Command::LogLevel {
            level: "debug".to_owned()
        })
    );
    for bad in [
        "/log-level",
        "/log-level?level=loud",
        "/log-level?lvl=info",
        "/cache/flush?type=A",
        "/cache/flush?name=x.example&type=NOPE",
    ] {
        assert_eq!(post(bad).unwrap_err().status, 400, "{bad}");
    }
    assert_eq!(
        command(&get("/top-queries")),
        Ok(Command::TopQueries { limit: 20 })
    );
    assert_eq!(
        command(&get("/top-queries?limit=5")),
        Ok(Command::TopQueries { limit: 5 })
    );
    assert_eq!(command(&get("/cache/dump")), Ok(Command::CacheDump));
    let body = "a. A NOERROR positive 1 - AAAA\n";
    let load = format!(
        "POST /cache/load HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(
        command(load.as_bytes()),
        Ok(Command::CacheLoad {
            text: body.to_owned()
        })
    );
    for bad in [
        "/cache/lookup",
        "/cache/lookup?type=A",
        "/cache/lookup?name=a..b",
        "/top-queries?limit=0",
        "/top-queries?limit=1001",
        "/top-queries?limit=x",
        "/cache/dump?x=1",
    ] {
        assert_eq!(command(&get(bad)).unwrap_err().status, 400, "{bad}");
    }
    assert!(Command::Metrics.is_monitoring() && Command::Health.is_monitoring());
    assert!(!Command::Stats.is_monitoring() && !Command::Reload.is_monitoring());
}

#[test]
fn status_reports_uptime_generation_and_upstream_state() {
    let snapshot = sample_snapshot();
    let response = render_status(&snapshot, 3723, 2);
    assert_eq!(response.status, 200);
    let value: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(value["uptime_seconds"], 3723);
    assert_eq!(value["generation"], 2);
    assert_eq!(value["cores"], snapshot.cores.len());
    let first = &value["upstreams"][0];
    assert_eq!(first["upstream"], "192.0.2.1:53");
    // The mean of the cores' SRTTs (20 and 21 ms), in milliseconds.
    assert_eq!(first["srtt_ms"].as_f64().unwrap(), 20.5);
    assert_eq!(first["consecutive_failures"], 1);
    // An upstream never measured has no SRTT.
    assert!(value["upstreams"][1]["srtt_ms"].is_null());
}

#[test]
fn the_authorization_header_is_kept() {
    let parsed =
        request(b"GET /stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret \r\n\r\n");
    assert_eq!(parsed.authorization.as_deref(), Some("Bearer s3cret"));
    assert_eq!(request(&get("/stats")).authorization, None);
}

// ---- flush names ----

fn flushed(query: &str) -> Option<NameBuf> {
    match flush(query) {
        Ok(Command::Flush { name, qtype: None }) => name,
        other => panic!("{query}: {other:?}"),
    }
}

#[test]
fn flush_name_is_parsed_lowercased_and_decoded() {
    let expected = NameBuf::from_presentation("www.example.com.").unwrap();
    assert_eq!(flushed("?name=www.example.com"), Some(expected.clone()));
    assert_eq!(flushed("?name=WWW.Example.COM."), Some(expected.clone()));
    assert_eq!(flushed("?name=www%2Eexample%2ecom"), Some(expected.clone()));
    assert_eq!(flushed("?&name=www.example.com&"), Some(expected));
    assert_eq!(flushed("?name=."), Some(NameBuf::root()));
    assert_eq!(flushed("?name=%2E"), Some(NameBuf::root()));
    // A presentation escape, itself percent-encoded: `a\.b.example`.
    let escaped = flushed("?name=a%5C.b.example").unwrap();
    assert_eq!(
        escaped,
        NameBuf::from_presentation("a\\.b.example").unwrap()
    );
    assert_eq!(escaped.as_wire().first(), Some(&3));
    assert_eq!(flushed("?"), None);
}

#[test]
fn bad_flush_queries_are_400() {
    for query in [
        "?name=",
        "?name",
        "?name=%zz",
        "?name=%2",
        "?name=a..b",
        "?name=%FF%FE",
        "?zone=example.com",
        "?name=a.example&name=b.example",
    ] {
        assert_eq!(flush(query).unwrap_err().status, 400, "{query}");
    }
    let long_label = format!("?name={}.example", "a".repeat(64));
    assert_eq!(flush(&long_label).unwrap_err().status, 400);
    let long_name = format!("?name={}", ["abcdefghij"; 30].join("."));
    assert_eq!(flush(&long_name).unwrap_err().status, 400);
}

#[test]
fn flush_name_from_a_form_body() {
    let body = "name=Sub.Example.org";
    let text = format!(
        "POST /cache/flush HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let expected = NameBuf::from_presentation("sub.example.org").unwrap();
    assert_eq!(
        command(text.as_bytes()),
        Ok(Command::Flush {
            name: Some(expected),
            qtype: None
        })
    );
    // A body of another type is ignored.
    let text = format!(
        "POST /cache/flush HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(
        command(text.as_bytes()),
        Ok(Command::Flush {
            name: None,
            qtype: None
        })
    );
}

#[test]
fn percent_decoding() {
    assert_eq!(percent_decode(b"a%20b+c"), Some(b"a b+c".to_vec()));
    assert_eq!(percent_decode(b"%41%6a"), Some(b"Aj".to_vec()));
    assert_eq!(percent_decode(b"%"), None);
    assert_eq!(percent_decode(b"%4"), None);
    assert_eq!(percent_decode(b"%g0"), None);
    assert_eq!(percent_decode(b""), Some(Vec::new()));
}

// ---- responses ----

#[test]
fn response_encoding_and_connection_close() {
    let response = Response::text(200, "ok\n");
    let (bytes, close) = response.encode(true);
    assert!(!close);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.contains("Content-Length: 3\r\n"));
    assert!(!text.contains("Connection: close"));
    assert!(text.ends_with("\r\n\r\nok\n"));
    let (bytes, close) = response.encode(false);
    assert!(close);
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .contains("Connection: close\r\n")
    );
    let (_, close) = HttpError::PayloadTooLarge.response().encode(true);
    assert!(close);
    // The encoded response parses back with httparse.
    let (bytes, _) = Response::text(405, "no\n")
        .with_header("Allow", "GET")
        .encode(true);
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut parsed = httparse::Response::new(&mut headers);
    assert!(parsed.parse(&bytes).unwrap().is_complete());
    assert_eq!(parsed.code, Some(405));
    assert_eq!(parsed.reason, Some("Method Not Allowed"));
}

#[test]
fn health_verdicts() {
    let ok = render_health(&[
        CoreHealth {
            core: 0,
            answered: true,
        },
        CoreHealth {
            core: 1,
            answered: true,
        },
    ]);
    assert_eq!((ok.status, ok.body_text().as_str()), (200, "ok\n"));
    let bad = render_health(&[
        CoreHealth {
            core: 0,
            answered: true,
        },
        CoreHealth {
            core: 1,
            answered: false,
        },
        CoreHealth {
            core: 3,
            answered: false,
        },
    ]);
    assert_eq!(bad.status, 503);
    assert_eq!(
        bad.body_text(),
        "unhealthy: cores not answering in time: 1,3\n"
    );
    assert_eq!(render_health(&[]).status, 503);
}

#[test]
fn flush_and_reload_results_are_json() {
    let name = NameBuf::from_presentation("example.com").unwrap();
    let response = render_flush_result(Some(&name), 42);
    assert_eq!(response.status, 200);
    assert_eq!(response.content_type, "application/json");
    let value: Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(value["flushed"], "example.com.");
    assert_eq!(value["removed"], 42);
    let all: Value = serde_json::from_slice(&render_flush_result(None, 7).body).unwrap();
    assert_eq!(all["flushed"], Value::Null);

    let report = ReloadReport {
        generation: 3,
        changes: vec!["upstreams: 2 -> 3".to_owned()],
    };
    let ok = render_reload_result(Ok(report));
    assert_eq!(ok.status, 200);
    let value: Value = serde_json::from_slice(&ok.body).unwrap();
    assert_eq!(value["status"], "ok");
    assert_eq!(value["generation"], 3);
    assert_eq!(value["changes"][0], "upstreams: 2 -> 3");
    let failed = render_reload_result(Err("line 3: bad \"port\"".to_owned()));
    assert_eq!(failed.status, 500);
    let value: Value = serde_json::from_slice(&failed.body).unwrap();
    assert_eq!(value["status"], "error");
    assert_eq!(value["error"], "line 3: bad \"port\"");
}

// ---- snapshot, stats and metrics ----

fn sample_snapshot() -> Snapshot {
    let mut cores = Vec::new();
    for index in 0..2u64 {
        let mut core = CoreSnapshot {
            core: index as usize,
            ..CoreSnapshot::default()
        };
        core.queries = TransportCounts {
            udp: 100 + index,
            tcp: 10 + index,
            tls: 20 + index,
            https: 30 + index,
            quic: 40 + index,
        };
        core.qtypes.add_code(1, 60);
        core.qtypes.add_code(28, 30);
        core.qtypes.add_code(65, 5);
        core.qtypes.add_code(99, 15 + 2 * index);
        core.rcodes.add_code(0, 90);
        core.rcodes.add_code(3, 15);
        core.rcodes.add_code(16, 1 + index);
        core.cache = CacheSnapshot {
            hits: 70,
            misses: 30,
            stale_served: 2,
            prefetches: 3,
            evictions: 4,
            entries: 500,
            copies: 40,
            bytes: 65_536,
        };
        core.hints = HintSnapshot {
            sent: 5,
            received: 6,
            dropped: index,
        };
        core.udp = UdpSnapshot {
            send_errors: 7,
            gso_sends: 8 + index,
            gso_segments: 40,
            gso_fallbacks: index,
        };
        core.policy = PolicySnapshot {
            blocked: 3,
            malformed: 4,
        };
        for (n, desc) in COUNTERS.iter().enumerate() {
            core.counters
                .set(desc.counter, 1000 + n as u64 + 100 * index);
        }
        core.answers.udp_hit.observe_us(40);
        core.answers.udp_miss.observe_us(12_000);
        core.answers.tcp_miss.observe_us(3_000_000);
        for (n, &reason) in REJECT_REASONS.iter().enumerate() {
            core.replies
                .add_rejected(reason, 10 * (n as u64 + 1) + index);
        }
        core.replies.mismatched = 280 + 7 * index;
        core.replies.malformed = 11;
        core.replies.late_accepted = 12;
        core.replies.case_fallbacks = 1;
        core.replies.cookie_fallbacks = 2;
        core.replies.badcookie_retries = 3 + index;
        core.replies.strikes_flooded = 5;
        core.sockets = UpstreamSocketSnapshot {
            open: 3,
            opened: 30,
            bind_retries: 2,
            bind_failures: 1,
            waits: 5,
            wait_drops: 4,
            strays: 6,
        };
        core.client_cookies = ClientCookieSnapshot {
            valid: 21 + index,
            new: 22,
            bad: 23,
            malformed: 24,
            badcookie_sent: 25,
            truncated: 26,
        };
        core.dnstap = DnstapSnapshot {
            sent: 40 + index,
            dropped: 3,
        };
        let mut latency = LatencyHistogram::default();
        for us in [100, 500, 501, 2_000, 40_000, 3_000_000, 9_999_999] {
            latency.observe_us(us);
        }
        core.upstreams = vec![
            UpstreamSnapshot {
                label: "192.0.2.1:53".to_owned(),
                queries: 30,
                errors: 1,
                timeouts: 2,
                replies: 27,
                truncated: 3,
                case_mismatches: 4,
                case_strikes: 5,
                case_fallbacks: 6,
                cookie_fallbacks: 7,
                latency,
                cookies_supported: 1,
                server_cookie_known: 1,
                case_fallback: index,
                srtt_us: Some(20_000 + 1000 * index),
                consecutive_failures: index,
            },
            UpstreamSnapshot {
                label: "tricky \"quoted\" \\ back\nslash".to_owned(),
                ..UpstreamSnapshot::default()
            },
        ];
        cores.push(core);
    }
    Snapshot {
        cores,
        server: ServerSnapshot {
            version: "0.1.0".to_owned(),
            commit: Some("abc123".to_owned()),
            rustc: None,
            reloads_ok: 3,
            reloads_failed: 1,
            last_reload_success_unix: Some(1_700_000_000),
        },
        process: Some(ProcessSnapshot {
            resident_memory_bytes: 10 << 20,
            virtual_memory_bytes: 100 << 20,
            open_fds: 42,
            max_fds: 1024,
            cpu_micros: 1_250_000,
            start_time_unix_micros: 1_700_000_000_500_000,
        }),
        aggregate_cores: false,
    }
}

#[test]
fn bucket_mapping() {
    assert_eq!(QtypeBucket::from_code(1), QtypeBucket::A);
    assert_eq!(QtypeBucket::from_code(255), QtypeBucket::Any);
    assert_eq!(QtypeBucket::from_code(64), QtypeBucket::Other);
    assert_eq!(RcodeBucket::from_code(5), RcodeBucket::Refused);
    assert_eq!(RcodeBucket::from_code(16), RcodeBucket::Other);
    let labels: Vec<&str> = QTYPE_BUCKETS.iter().map(|b| b.label()).collect();
    assert_eq!(
        labels,
        [
            "A", "AAAA", "MX", "TXT", "PTR", "SRV", "NS", "CNAME", "SOA", "HTTPS", "ANY", "other"
        ]
    );
    assert_eq!(RCODE_BUCKETS.len(), 7);
    // The array length is fixed by its type; check the buckets themselves.
    let labels: Vec<&str> = RCODE_BUCKETS.iter().map(|b| b.label()).collect();
    assert_eq!(
        labels,
        [
            "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other"
        ]
    );
    for (code, bucket) in (0u16..).zip(RCODE_BUCKETS) {
        assert_eq!(RcodeBucket::from_code(code), bucket);
    }
    let qtype_codes = [1u16, 28, 15, 16, 12, 33, 2, 5, 6, 65, 255, 64];
    for (code, bucket) in qtype_codes.into_iter().zip(QTYPE_BUCKETS) {
        assert_eq!(QtypeBucket::from_code(code), bucket, "qtype {code}");
    }
}

#[test]
fn histogram_buckets_are_cumulative() {
    let mut histogram = LatencyHistogram::default();
    for us in [0, 500, 501, 2_500_000, 2_500_001] {
        histogram.observe_us(us);
    }
    let cumulative = histogram.cumulative();
    assert_eq!(cumulative[0], 1); // <= 50 us: 0
    assert_eq!(cumulative[3], 2); // <= 0.5 ms: 0 and 500
    assert_eq!(cumulative[4], 3); // <= 1 ms
    assert_eq!(cumulative[14], 4); // <= 2.5 s
    assert_eq!(cumulative[15], 5); // +Inf
    assert_eq!(histogram.count(), 5);
    assert_eq!(histogram.sum_us(), 500 + 501 + 2_500_000 + 2_500_001);
}

#[test]
fn stats_json_has_the_documented_fields() {
    let snapshot = sample_snapshot();
    let response = render_stats_json(&snapshot);
    assert_eq!(response.status, 200);
    assert_eq!(response.content_type, "application/json");
    let value: Value = serde_json::from_slice(&response.body).unwrap();
    let cores = value["cores"].as_array().unwrap();
    assert_eq!(cores.len(), 2);
    for (index, core) in cores.iter().enumerate() {
        assert_eq!(core["core"], index);
        for field in [
            "queries",
            "qtypes",
            "rcodes",
            "cache",
            "hints",
            "udp",
            "policy",
            "upstreams",
        ] {
            assert!(core.get(field).is_some(), "core field {field}");
        }
        for field in ["udp", "tcp"] {
            assert!(core["queries"][field].is_u64());
        }
        for bucket in QTYPE_BUCKETS {
            assert!(core["qtypes"][bucket.label()].is_u64());
        }
        for bucket in RCODE_BUCKETS {
            assert!(core["rcodes"][bucket.label()].is_u64());
        }
        for field in [
            "hits",
            "misses",
            "stale_served",
            "prefetches",
            "evictions",
            "entries",
            "bytes",
        ] {
            assert!(core["cache"][field].is_u64(), "cache.{field}");
        }
        for field in ["sent", "received", "dropped"] {
            assert!(core["hints"][field].is_u64());
        }
        for field in ["send_errors", "gso_sends", "gso_segments", "gso_fallbacks"] {
            assert!(core["udp"][field].is_u64(), "udp.{field}");
        }
        for field in ["blocked", "malformed"] {
            assert!(core["policy"][field].is_u64());
        }
        let upstream = &core["upstreams"][0];
        assert_eq!(upstream["upstream"], "192.0.2.1:53");
        for field in ["queries", "errors", "timeouts"] {
            assert!(upstream[field].is_u64());
        }
        assert_eq!(upstream["latency"]["count"], 7);
        let buckets = upstream["latency"]["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), LATENCY_BOUNDS_US.len() + 1);
        assert_eq!(buckets[0]["le_us"], 50);
        assert_eq!(buckets[3]["le_us"], 500);
        assert_eq!(buckets[15]["le_us"], "+Inf");
        assert_eq!(buckets[15]["count"], 7);
    }
    let totals = &value["totals"];
    assert!(totals.get("core").is_none());
    assert_eq!(totals["queries"]["udp"], 201);
    assert_eq!(totals["qtypes"]["other"], 32);
    assert_eq!(totals["rcodes"]["other"], 3);
    assert_eq!(totals["cache"]["entries"], 1000);
    assert_eq!(totals["upstreams"].as_array().unwrap().len(), 2);
    assert_eq!(totals["upstreams"][0]["queries"], 60);
    assert_eq!(totals["upstreams"][0]["latency"]["count"], 14);
    let replies = &totals["upstream_replies"];
    for (n, reason) in REJECT_REASONS.iter().enumerate() {
        let expected = 2 * 10 * (n as u64 + 1) + 1;
        assert_eq!(replies["rejected"][reason.label()], expected, "{reason:?}");
    }
    assert_eq!(replies["mismatched"], 567);
    assert_eq!(replies["malformed"], 22);
    assert_eq!(replies["late_accepted"], 24);
    assert_eq!(replies["case_fallbacks"], 2);
    assert_eq!(replies["cookie_fallbacks"], 4);
    assert_eq!(replies["badcookie_retries"], 7);
    assert_eq!(replies["strikes_flooded"], 10);
    let upstream = &totals["upstreams"][0];
    assert_eq!(upstream["cookies_supported"], 2, "cores that know it");
    assert_eq!(upstream["server_cookie_known"], 2);
    assert_eq!(upstream["case_fallback"], 1);
    let sockets = &totals["upstream_sockets"];
    for (field, expected) in [
        ("open", 6),
        ("opened", 60),
        ("bind_retries", 4),
        ("bind_failures", 2),
        ("waits", 10),
        ("wait_drops", 8),
        ("strays", 12),
    ] {
        assert_eq!(sockets[field], expected, "upstream_sockets.{field}");
    }
    assert_eq!(totals["dnstap"]["sent"], 81);
    assert_eq!(totals["dnstap"]["dropped"], 6);
}

const FAMILIES: [(&str, &str); 121] = [
    ("heimdall_cores", "gauge"),
    ("heimdall_build_info", "gauge"),
    ("heimdall_reloads_total", "counter"),
    ("heimdall_last_reload_success_timestamp_seconds", "gauge"),
    ("heimdall_queries_total", "counter"),
    ("heimdall_queries_by_qtype_total", "counter"),
    ("heimdall_responses_total", "counter"),
    ("heimdall_upstream_replies_rejected_total", "counter"),
    ("heimdall_client_cookies_total", "counter"),
    ("heimdall_client_cookie_badcookie_total", "counter"),
    ("heimdall_client_cookie_truncated_total", "counter"),
    ("heimdall_cache_hits_total", "counter"),
    ("heimdall_cache_misses_total", "counter"),
    ("heimdall_cache_stale_served_total", "counter"),
    ("heimdall_cache_prefetches_total", "counter"),
    ("heimdall_cache_evictions_total", "counter"),
    ("heimdall_hints_sent_total", "counter"),
    ("heimdall_hints_received_total", "counter"),
    ("heimdall_hints_dropped_total", "counter"),
    ("heimdall_udp_send_errors_total", "counter"),
    ("heimdall_udp_gso_sends_total", "counter"),
    ("heimdall_udp_gso_segments_total", "counter"),
    ("heimdall_udp_gso_fallbacks_total", "counter"),
    ("heimdall_queries_blocked_total", "counter"),
    ("heimdall_queries_malformed_total", "counter"),
    ("heimdall_upstream_replies_mismatched_total", "counter"),
    ("heimdall_upstream_replies_malformed_total", "counter"),
    ("heimdall_upstream_replies_late_accepted_total", "counter"),
    ("heimdall_upstream_case_fallbacks_total", "counter"),
    ("heimdall_upstream_sockets_opened_total", "counter"),
    ("heimdall_upstream_socket_bind_retries_total", "counter"),
    ("heimdall_upstream_socket_bind_failures_total", "counter"),
    ("heimdall_upstream_socket_waits_total", "counter"),
    ("heimdall_upstream_socket_wait_drops_total", "counter"),
    ("heimdall_upstream_socket_strays_total", "counter"),
    ("heimdall_upstream_cookie_fallbacks_total", "counter"),
    ("heimdall_upstream_badcookie_retries_total", "counter"),
    ("heimdall_upstream_strikes_flooded_total", "counter"),
    ("heimdall_dnstap_sent_total", "counter"),
    ("heimdall_dnstap_dropped_total", "counter"),
    ("heimdall_cache_entries", "gauge"),
    ("heimdall_cache_entries_copied", "gauge"),
    ("heimdall_cache_bytes", "gauge"),
    ("heimdall_upstream_sockets_open", "gauge"),
    ("heimdall_queries_coalesced_total", "counter"),
    ("heimdall_queries_dropped_overload_total", "counter"),
    ("heimdall_local_answers_total", "counter"),
    ("heimdall_queries_acl_denied_total", "counter"),
    ("heimdall_queries_rate_limited_total", "counter"),
    ("heimdall_error_replies_sent_total", "counter"),
    ("heimdall_upstream_error_failures_total", "counter"),
    ("heimdall_upstream_truncated_total", "counter"),
    ("heimdall_upstream_tcp_queries_total", "counter"),
    ("heimdall_dnssec_answers_total", "counter"),
    ("heimdall_dnssec_bogus_total", "counter"),
    ("heimdall_dnssec_subqueries_total", "counter"),
    ("heimdall_dnssec_aggressive_answers_total", "counter"),
    ("heimdall_dnssec_unsigned_from_signed_zone_total", "counter"),
    ("heimdall_dnssec_signatures_remembered_total", "counter"),
    ("heimdall_hints_produced_total", "counter"),
    ("heimdall_hints_stored_total", "counter"),
    ("heimdall_steering_spread_total", "counter"),
    ("heimdall_steering_attach_errors_total", "counter"),
    ("heimdall_cache_off_owner_fetches_total", "counter"),
    ("heimdall_cache_inserts_total", "counter"),
    ("heimdall_cache_expired_total", "counter"),
    ("heimdall_cache_stale_lookups_total", "counter"),
    ("heimdall_bad_lengths_total", "counter"),
    ("heimdall_udp_receive_rearms_total", "counter"),
    ("heimdall_udp_pauses_total", "counter"),
    ("heimdall_udp_pause_verdicts_total", "counter"),
    ("heimdall_udp_pausing", "gauge"),
    ("heimdall_tcp_connections_accepted_total", "counter"),
    ("heimdall_tcp_connections_refused_total", "counter"),
    ("heimdall_tcp_connections_evicted_total", "counter"),
    ("heimdall_tcp_connections_closed_total", "counter"),
    ("heimdall_tcp_queries_total", "counter"),
    ("heimdall_tcp_replies_orphaned_total", "counter"),
    ("heimdall_upstream_tcp_connects_total", "counter"),
    ("heimdall_upstream_tcp_errors_total", "counter"),
    ("heimdall_tcp_connections_open", "gauge"),
    ("heimdall_upstream_inflight", "gauge"),
    ("heimdall_tls_connections_accepted_total", "counter"),
    ("heimdall_tls_connections_refused_total", "counter"),
    ("heimdall_tls_connections_evicted_total", "counter"),
    ("heimdall_tls_connections_closed_idle_total", "counter"),
    (
        "heimdall_tls_connections_closed_read_timeout_total",
        "counter",
    ),
    ("heimdall_tls_handshakes_total", "counter"),
    ("heimdall_tls_handshake_failures_total", "counter"),
    ("heimdall_tls_queries_total", "counter"),
    ("heimdall_tls_replies_orphaned_total", "counter"),
    ("heimdall_doh_requests_refused_total", "counter"),
    ("heimdall_upstream_tls_connects_total", "counter"),
    ("heimdall_upstream_tls_errors_total", "counter"),
    ("heimdall_upstream_tls_handshake_failures_total", "counter"),
    ("heimdall_tls_resumptions_total", "counter"),
    ("heimdall_tls_ticket_key_generation", "gauge"),
    ("heimdall_upstream_tls_resumptions_total", "counter"),
    ("heimdall_tls_connections_open", "gauge"),
    ("heimdall_quic_datagrams_dropped_total", "counter"),
    ("heimdall_quic_protocol_errors_total", "counter"),
    ("heimdall_upstream_queries_total", "counter"),
    ("heimdall_upstream_replies_total", "counter"),
    ("heimdall_upstream_errors_total", "counter"),
    ("heimdall_upstream_timeouts_total", "counter"),
    ("heimdall_upstream_truncated_replies_total", "counter"),
    ("heimdall_upstream_case_mismatches_total", "counter"),
    ("heimdall_upstream_case_strikes_total", "counter"),
    (
        "heimdall_upstream_case_fallbacks_by_upstream_total",
        "counter",
    ),
    (
        "heimdall_upstream_cookie_fallbacks_by_upstream_total",
        "counter",
    ),
    ("heimdall_upstream_cookies_supported", "gauge"),
    ("heimdall_upstream_server_cookie_known", "gauge"),
    ("heimdall_upstream_case_fallback", "gauge"),
    ("heimdall_upstream_latency_seconds", "histogram"),
    ("heimdall_answer_duration_seconds", "histogram"),
    ("process_resident_memory_bytes", "gauge"),
    ("process_virtual_memory_bytes", "gauge"),
    ("process_open_fds", "gauge"),
    ("process_max_fds", "gauge"),
    ("process_cpu_seconds_total", "counter"),
    ("process_start_time_seconds", "gauge"),
];

#[test]
fn metrics_text_is_valid_and_complete() {
    let snapshot = sample_snapshot();
    let response = render_metrics(&snapshot);
    assert_eq!(response.status, 200);
    assert_eq!(response.content_type, METRICS_CONTENT_TYPE);
    assert!(
        response
            .content_type
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.body_text();
    let parsed = expo::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    let names: Vec<(&str, &str)> = parsed
        .families
        .iter()
        .map(|f| (f.name.as_str(), f.kind.as_str()))
        .collect();
    assert_eq!(names, FAMILIES);
    for family in &parsed.families {
        assert!(family.name.starts_with("heimdall_") || family.name.starts_with("process_"));
        assert!(!family.help.is_empty(), "{} has no HELP", family.name);
    }

    let v = |name: &str, labels: &[(&str, &str)]| parsed.value(name, labels).unwrap();
    assert_eq!(v("heimdall_cores", &[]), 2.0);
    assert_eq!(
        v(
            "heimdall_queries_total",
            &[("core", "1"), ("transport", "udp")]
        ),
        101.0
    );
    assert_eq!(
        v(
            "heimdall_queries_total",
            &[("core", "0"), ("transport", "tcp")]
        ),
        10.0
    );
    assert_eq!(
        v(
            "heimdall_queries_by_qtype_total",
            &[("core", "0"), ("qtype", "HTTPS")]
        ),
        5.0
    );
    assert_eq!(
        v(
            "heimdall_queries_by_qtype_total",
            &[("core", "1"), ("qtype", "other")]
        ),
        17.0
    );
    assert_eq!(
        v(
            "heimdall_queries_by_qtype_total",
            &[("core", "0"), ("qtype", "MX")]
        ),
        0.0
    );
    assert_eq!(
        v(
            "heimdall_responses_total",
            &[("core", "0"), ("rcode", "NXDOMAIN")]
        ),
        15.0
    );
    assert_eq!(
        v(
            "heimdall_responses_total",
            &[("core", "1"), ("rcode", "other")]
        ),
        2.0
    );
    assert_eq!(v("heimdall_cache_bytes", &[("core", "0")]), 65_536.0);
    assert_eq!(v("heimdall_hints_dropped_total", &[("core", "1")]), 1.0);
    assert_eq!(v("heimdall_udp_gso_sends_total", &[("core", "1")]), 9.0);
    assert_eq!(v("heimdall_udp_gso_fallbacks_total", &[("core", "0")]), 0.0);
    assert_eq!(v("heimdall_udp_gso_fallbacks_total", &[("core", "1")]), 1.0);
    assert_eq!(v("heimdall_udp_send_errors_total", &[("core", "0")]), 7.0);
    assert_eq!(v("heimdall_queries_malformed_total", &[("core", "0")]), 4.0);
    // Every reply-check and socket counter, each at a non-zero value.
    for (n, reason) in REJECT_REASONS.iter().enumerate() {
        let labels = [("core", "1"), ("reason", reason.label())];
        let expected = 10.0 * (n as f64 + 1.0) + 1.0;
        assert_eq!(
            v("heimdall_upstream_replies_rejected_total", &labels),
            expected,
            "{reason:?}"
        );
    }
    let reasons = parsed
        .family("heimdall_upstream_replies_rejected_total")
        .unwrap();
    assert_eq!(reasons.samples.len(), 2 * REJECT_REASONS.len());
    for (name, expected) in [
        ("heimdall_upstream_replies_mismatched_total", 287.0),
        ("heimdall_upstream_replies_malformed_total", 11.0),
        ("heimdall_upstream_replies_late_accepted_total", 12.0),
        ("heimdall_upstream_case_fallbacks_total", 1.0),
        ("heimdall_upstream_sockets_opened_total", 30.0),
        ("heimdall_upstream_socket_bind_retries_total", 2.0),
        ("heimdall_upstream_socket_bind_failures_total", 1.0),
        ("heimdall_upstream_socket_waits_total", 5.0),
        ("heimdall_upstream_socket_wait_drops_total", 4.0),
        ("heimdall_upstream_socket_strays_total", 6.0),
        ("heimdall_upstream_sockets_open", 3.0),
        ("heimdall_upstream_cookie_fallbacks_total", 2.0),
        ("heimdall_upstream_badcookie_retries_total", 4.0),
        ("heimdall_upstream_strikes_flooded_total", 5.0),
        ("heimdall_dnstap_sent_total", 41.0),
        ("heimdall_dnstap_dropped_total", 3.0),
    ] {
        assert_eq!(v(name, &[("core", "1")]), expected, "{name}");
    }
    let upstream_1 = [("core", "1"), ("upstream", "192.0.2.1:53")];
    for name in [
        "heimdall_upstream_cookies_supported",
        "heimdall_upstream_server_cookie_known",
        "heimdall_upstream_case_fallback",
    ] {
        assert_eq!(v(name, &upstream_1), 1.0, "{name}");
    }
    let upstream = [("core", "0"), ("upstream", "192.0.2.1:53")];
    assert_eq!(v("heimdall_upstream_timeouts_total", &upstream), 2.0);
    assert_eq!(v("heimdall_upstream_latency_seconds_count", &upstream), 7.0);
    let sum = v("heimdall_upstream_latency_seconds_sum", &upstream);
    assert!((sum - 13.043_100).abs() < 1e-9, "{sum}");
    let bucket = |le: &str| {
        v(
            "heimdall_upstream_latency_seconds_bucket",
            &[upstream[0], upstream[1], ("le", le)],
        )
    };
    assert_eq!(bucket("0.0005"), 2.0);
    assert_eq!(bucket("0.0025"), 4.0);
    assert_eq!(bucket("0.05"), 5.0);
    assert_eq!(bucket("2.5"), 5.0);
    assert_eq!(bucket("+Inf"), 7.0);
    // 2 cores x 2 upstreams x (16 buckets + _sum + _count).
    let histogram = parsed.family("heimdall_upstream_latency_seconds").unwrap();
    assert_eq!(histogram.samples.len(), 72);
    // The awkward label survives escaping and parsing.
    let tricky = [
        ("core", "1"),
        ("upstream", "tricky \"quoted\" \\ back\nslash"),
    ];
    assert_eq!(v("heimdall_upstream_queries_total", &tricky), 0.0);
    assert!(text.contains(r#"upstream="tricky \"quoted\" \\ back\nslash""#));
}

#[test]
fn empty_snapshot_is_valid() {
    let text = render_metrics(&Snapshot::default()).body_text();
    let parsed = expo::parse(&text).unwrap();
    // Every family but the process ones, which need a process reading.
    let process = FAMILIES
        .iter()
        .filter(|(name, _)| name.starts_with("process_"));
    assert_eq!(parsed.families.len(), FAMILIES.len() - process.count());
    assert_eq!(parsed.value("heimdall_cores", &[]), Some(0.0));
}

#[test]
fn exposition_parser_rejects_bad_text() {
    let ok = "# HELP m_total h\n# TYPE m_total counter\nm_total{a=\"b\"} 1\n";
    assert!(expo::parse(ok).is_ok());
    let bad = [
        // Sample before HELP/TYPE.
        "m_total 1\n",
        "# TYPE m_total counter\nm_total 1\n# HELP m_total h\n",
        // Missing trailing newline, blank line.
        "# HELP g h\n# TYPE g gauge\ng 1",
        "# HELP g h\n# TYPE g gauge\n\ng 1\n",
        // Bad names and labels.
        "# HELP 1g h\n# TYPE 1g gauge\n1g 1\n",
        "# HELP g h\n# TYPE g gauge\ng{1a=\"x\"} 1\n",
        "# HELP g h\n# TYPE g gauge\ng{__a=\"x\"} 1\n",
        "# HELP g h\n# TYPE g gauge\ng{a=\"x\\t\"} 1\n",
        "# HELP g h\n# TYPE g gauge\ng{a=\"x\",a=\"y\"} 1\n",
        "# HELP g h\n# TYPE g gauge\ng{a=x} 1\n",
        "# HELP g h\n# TYPE g gauge\ng one\n",
        // Counter without _total; negative counter; duplicate series.
        "# HELP c h\n# TYPE c counter\nc 1\n",
        "# HELP c_total h\n# TYPE c_total counter\nc_total -1\n",
        "# HELP g h\n# TYPE g gauge\ng 1\ng 2\n",
        // Family repeated or interleaved, sample from another family.
        "# HELP g h\n# TYPE g gauge\ng 1\n# HELP f h\n# TYPE f gauge\nf 1\n# HELP g h\n",
        "# HELP g h\n# TYPE g gauge\nf 1\n",
        "# HELP g h\n# TYPE g gauge\n# TYPE g gauge\ng 1\n",
        "# HELP g h\n# TYPE g wat\ng 1\n",
        // Histograms: decreasing, not increasing le, +Inf != count, no +Inf, no sum.
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        "# HELP h h\n# TYPE h histogram\nh_sum 1\nh_count 1\n",
    ];
    for text in bad {
        assert!(expo::parse(text).is_err(), "accepted: {text:?}");
    }
    let histogram = "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.7\nh_count 2\n";
    assert!(expo::parse(histogram).is_ok());
}

/// `promtool check metrics` on the rendered text, when promtool is
/// installed (Debian: `apt-get install prometheus`); skipped otherwise.
#[test]
fn promtool_accepts_metrics_when_available() {
    let text = render_metrics(&sample_snapshot()).body_text();
    match expo::promtool_check(&text) {
        None => eprintln!("promtool not found; skipping"),
        Some(verdict) => verdict.unwrap_or_else(|err| panic!("promtool failed:\n{err}")),
    }
}

#[test]
fn histogram_buckets_added_from_a_runtime_histogram() {
    let mut observed = LatencyHistogram::default();
    for latency in [100, 500, 501, 3_000, 2_500_000, 9_000_000] {
        observed.observe_us(latency);
    }
    let mut copied = LatencyHistogram::default();
    copied.add_bucket(Some(100), 1);
    copied.add_bucket(Some(500), 1);
    copied.add_bucket(Some(1_000), 1);
    copied.add_bucket(Some(5_000), 1);
    copied.add_bucket(Some(2_500_000), 1);
    copied.add_bucket(None, 1);
    copied.add_sum_us(100 + 500 + 501 + 3_000 + 2_500_000 + 9_000_000);
    assert_eq!(copied, observed);
    // A bound between two of ours counts in the next larger bucket.
    let mut odd = LatencyHistogram::default();
    odd.add_bucket(Some(700), 1);
    assert_eq!(odd.cumulative()[3], 0, "le 0.5 ms");
    assert_eq!(odd.cumulative()[4], 1, "le 1 ms");
}

#[test]
fn client_cookie_counters_reach_metrics_and_stats() {
    let snapshot = sample_snapshot();
    let text = render_metrics(&snapshot).body_text();
    let parsed = expo::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    let v = |name: &str, labels: &[(&str, &str)]| parsed.value(name, labels).unwrap();
    for (outcome, expected) in [
        ("valid", 22.0),
        ("new", 22.0),
        ("bad", 23.0),
        ("malformed", 24.0),
    ] {
        assert_eq!(
            v(
                "heimdall_client_cookies_total",
                &[("core", "1"), ("outcome", outcome)]
            ),
            expected,
            "{outcome}"
        );
    }
    assert_eq!(
        v("heimdall_client_cookie_badcookie_total", &[("core", "0")]),
        25.0
    );
    assert_eq!(
        v("heimdall_client_cookie_truncated_total", &[("core", "1")]),
        26.0
    );
    let stats = crate::render::stats_value(&snapshot);
    let totals = &stats["totals"]["client_cookies"];
    for (field, expected) in [
        ("valid", 43),
        ("new", 44),
        ("bad", 46),
        ("malformed", 48),
        ("badcookie_sent", 50),
        ("truncated", 52),
    ] {
        assert_eq!(totals[field], expected, "client_cookies.{field}");
    }
    assert_eq!(stats["cores"][1]["client_cookies"]["valid"], 22);
}

// ---- every counter reaches both outputs ----

/// Every descriptor in [`COUNTERS`], and every per-upstream field, reaches
/// `/metrics` (with its value, per core) and `/stats` (per core and in
/// the totals): a counter added to the list without an exporter fails here.
#[test]
fn every_descriptor_counter_reaches_metrics_and_stats() {
    let snapshot = sample_snapshot();
    let text = render_metrics(&snapshot).body_text();
    let parsed = expo::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    let stats = stats_json(&snapshot);
    for (n, desc) in COUNTERS.iter().enumerate() {
        for core in 0..2u64 {
            let id = core.to_string();
            let mut labels = vec![("core", id.as_str())];
            labels.extend(desc.label);
            let expected = 1000 + n as u64 + 100 * core;
            assert_eq!(
                parsed.value(desc.metric, &labels),
                Some(expected as f64),
                "{} {:?} in /metrics",
                desc.metric,
                desc.label
            );
            let (object, key) = desc.json;
            assert_eq!(
                stats["cores"][core as usize][object][key], expected,
                "{object}.{key} in /stats"
            );
        }
        let family = parsed.family(desc.metric).unwrap();
        assert_eq!(family.kind, desc.kind.label());
        assert_eq!(family.help, desc.help);
        let (object, key) = desc.json;
        assert_eq!(stats["totals"][object][key], 2 * (1000 + n as u64) + 100);
    }
    let upstream = &stats["cores"][0]["upstreams"][0];
    for (name, _, key, read) in metrics::UPSTREAM_COUNTERS
        .iter()
        .chain(&metrics::UPSTREAM_STATE_GAUGES)
    {
        let value = read(&snapshot.cores[0].upstreams[0]);
        assert_eq!(upstream[*key], value, "upstreams[].{key}");
        let labels = [("core", "0"), ("upstream", "192.0.2.1:53")];
        assert_eq!(parsed.value(name, &labels), Some(value as f64), "{name}");
    }
}

#[test]
fn answer_latency_is_a_histogram_by_transport_and_cache() {
    let snapshot = sample_snapshot();
    let text = render_metrics(&snapshot).body_text();
    let parsed = expo::parse(&text).unwrap();
    let name = "heimdall_answer_duration_seconds_bucket";
    let series = |transport, cache, le| {
        parsed
            .value(
                name,
                &[
                    ("core", "1"),
                    ("transport", transport),
                    ("cache", cache),
                    ("le", le),
                ],
            )
            .unwrap()
    };
    assert_eq!(series("udp", "hit", "0.0005"), 1.0);
    assert_eq!(series("udp", "miss", "0.01"), 0.0);
    assert_eq!(series("udp", "miss", "0.025"), 1.0);
    assert_eq!(series("tcp", "miss", "2.5"), 0.0);
    assert_eq!(series("tcp", "miss", "+Inf"), 1.0);
    assert_eq!(series("tcp", "hit", "+Inf"), 0.0);
    assert_eq!(
        parsed.value(
            "heimdall_answer_duration_seconds_sum",
            &[("core", "0"), ("transport", "udp"), ("cache", "miss")]
        ),
        Some(0.012)
    );
    let stats = stats_json(&snapshot);
    let totals = &stats["totals"]["answer_latency"];
    assert_eq!(totals[1]["transport"], "udp");
    assert_eq!(totals[1]["cache"], "miss");
    assert_eq!(totals[1]["count"], 2);
}

#[test]
fn build_info_reloads_and_process_metrics() {
    let snapshot = sample_snapshot();
    let text = render_metrics(&snapshot).body_text();
    let parsed = expo::parse(&text).unwrap();
    assert_eq!(
        parsed.value(
            "heimdall_build_info",
            &[("version", "0.1.0"), ("commit", "abc123")]
        ),
        Some(1.0)
    );
    assert!(!text.contains("rustc=\""), "no label for an unknown value");
    assert_eq!(
        parsed.value("heimdall_reloads_total", &[("result", "success")]),
        Some(3.0)
    );
    assert_eq!(
        parsed.value("heimdall_reloads_total", &[("result", "failure")]),
        Some(1.0)
    );
    assert_eq!(
        parsed.value("heimdall_last_reload_success_timestamp_seconds", &[]),
        Some(1_700_000_000.0)
    );
    assert_eq!(parsed.value("process_open_fds", &[]), Some(42.0));
    assert_eq!(parsed.value("process_cpu_seconds_total", &[]), Some(1.25));
    assert!(
        text.contains("process_start_time_seconds 1700000000.5\n"),
        "{text}"
    );
    let stats = stats_json(&snapshot);
    assert_eq!(stats["server"]["reloads"]["failure"], 1);
    assert_eq!(stats["server"]["process"]["open_fds"], 42);

    let bare = Snapshot::default();
    let text = render_metrics(&bare).body_text();
    assert!(!text.contains("process_"), "no process families unread");
}

#[test]
fn aggregate_cores_drops_the_core_label_and_sums() {
    let mut snapshot = sample_snapshot();
    snapshot.aggregate_cores = true;
    let text = render_metrics(&snapshot).body_text();
    let parsed = expo::parse(&text).unwrap_or_else(|error| panic!("{error}\n{text}"));
    assert!(!text.contains("core=\""), "{text}");
    assert_eq!(parsed.value("heimdall_cores", &[]), Some(2.0));
    assert_eq!(
        parsed.value("heimdall_queries_total", &[("transport", "udp")]),
        Some(201.0)
    );
    assert_eq!(
        parsed.value("heimdall_queries_rate_limited_total", &[("action", "drop")]),
        Some((2 * (1000 + Counter::RateLimitedDropped as u64) + 100) as f64)
    );
    assert_eq!(
        parsed.value(
            "heimdall_upstream_latency_seconds_count",
            &[("upstream", "192.0.2.1:53")]
        ),
        Some(14.0)
    );
    if let Some(verdict) = expo::promtool_check(&text) {
        verdict.unwrap_or_else(|err| panic!("promtool: {err}\n{text}"));
    }
}

fn stats_json(snapshot: &Snapshot) -> Value {
    serde_json::from_slice(&render_stats_json(snapshot).body).unwrap()
}

/// docs/OPERATIONS.md lists every family `/metrics` renders.
#[test]
fn operations_doc_lists_every_family() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/OPERATIONS.md"
    ))
    .unwrap();
    let text = render_metrics(&sample_snapshot()).body_text();
    let parsed = expo::parse(&text).unwrap();
    let missing: Vec<&str> = parsed
        .families
        .iter()
        .map(|family| family.name.as_str())
        .filter(|name| !doc.contains(&format!("| `{name}` |")))
        .collect();
    assert!(missing.is_empty(), "not in docs/OPERATIONS.md: {missing:?}");
}
