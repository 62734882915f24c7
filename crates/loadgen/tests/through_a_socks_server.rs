//! The generators against a real SOCKS server started in-process on 127.0.0.1: real SOCKS
//! bytes, real TCP streams and UDP datagrams.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use hasocks_loadgen::mix::Mix;
use hasocks_loadgen::target::{self, Target};
use hasocks_loadgen::udp::UdpLoad;
use hasocks_loadgen::{tcp, Mode, Options, Route};
use hasocks_server::ServerHandle;

async fn socks_server() -> (ServerHandle, SocketAddr) {
    let text = hasocks_test_support::sockd_conf_on("127.0.0.1", "pass", "");
    let cfg = hasocks_conf::sockd::parse(&text, Path::new("loadgen.conf")).expect("sockd.conf");
    let h = ServerHandle::start(cfg).await.expect("server");
    let addr = h.local_addrs()[0];
    (h, addr)
}

const TIMEOUT: Duration = Duration::from_secs(5);
const SHORT: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_through_a_server_echo_and_are_timed() {
    let (h, proxy) = socks_server().await;
    let echo = target::start(Target::Echo, Default::default(), None)
        .await
        .unwrap();
    let route = Arc::new(Route::via(proxy, echo, TIMEOUT));
    let r = tcp::sessions(&route, 4, 64, SHORT).await;
    assert!(
        r.sessions > 0 && r.errors.count == 0,
        "{:?}",
        r.errors.first
    );
    assert!(r.latency_us[0] > 0 && r.latency_us[0] <= r.latency_us[2]);
    assert_eq!(r.via, format!("socks5 {proxy}"));
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_through_a_server_is_counted_where_it_arrives() {
    let (h, proxy) = socks_server().await;
    for (kind, copy) in [(Target::Sink, false), (Target::CopySink, true)] {
        let counter = Arc::new(AtomicU64::new(0));
        let sink = target::start(kind, counter.clone(), None).await.unwrap();
        let route = Route::via(proxy, sink, TIMEOUT);
        let r = tcp::throughput(&route, 2, SHORT, copy, Some(counter)).await;
        assert_eq!((r.streams, r.errors.count), (2, 0), "{:?}", r.errors.first);
        assert!(r.bytes > 0 && r.counted == "received by target");
    }
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_associations_through_a_server_get_their_datagrams_echoed() {
    let (h, proxy) = socks_server().await;
    for batch in [1, 8] {
        let load = UdpLoad {
            proxy,
            associations: 2,
            duration: SHORT,
            size: 100,
            window: 8,
            batch,
        };
        let r = load.run().await;
        assert!(r.echoes > 0 && r.errors.count == 0, "{:?}", r.errors.first);
        assert_eq!(r.bytes, r.echoes * 100, "payload bytes per echo");
    }
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_options_drive_a_udp_load_and_print_its_line() {
    let (h, proxy) = socks_server().await;
    let o = Options {
        server: Some(proxy.to_string()),
        direct: false,
        mode: Mode::Udp,
        streams: 1,
        concurrency: 1,
        duration: 0.3,
        sessions: 1,
        payload: 64,
        target: None,
        hold: None,
        credentials: None,
        timeout_ms: 5000,
        source: None,
        target_bind: None,
        json: false,
        copy: false,
        window: 4,
        batch: 4,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let ok = hasocks_loadgen::run(&o, &mut out, &mut err).await.unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(ok, "{}", String::from_utf8_lossy(&err));
    assert!(out.starts_with("assoc=1 size=64 secs="), "{out}");
    assert!(
        out.contains(" dgram_per_s=") && out.contains(" mbit_per_s="),
        "{out}"
    );
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_load_through_a_server_loses_no_byte_and_no_session() {
    let (h, proxy) = socks_server().await;
    let echo = target::start(Target::Echo, Default::default(), None)
        .await
        .unwrap();
    let mut mix = Mix::start(proxy, echo, 4, 2);
    assert!(
        mix.pace(50, Duration::from_secs(20)).await,
        "sessions flowing"
    );
    for l in mix.finish_longs().await {
        let (sent, got, bytes) = l.expect("long session");
        assert!(sent == got && bytes > 0);
    }
    let (ok, failed, refused) = mix.finish().await;
    assert!(ok >= 50 && failed == 0 && refused == 0);
    h.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_mixed_load_with_nothing_listening_counts_refusals() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = l.local_addr().unwrap();
    drop(l);
    let mix = Mix::start(dead, dead, 2, 0);
    assert!(!mix.pace(1, Duration::from_millis(200)).await);
    let (ok, failed, refused) = mix.finish().await;
    assert_eq!((ok, failed), (0, 0));
    assert!(refused > 0);
}
