//! The whole GSS-API exchange in one process against a real KDC: tests/interop/gssapi.sh
//! makes a throw-away realm and runs this with `HASOCKS_KRB5_DIR` set (the realm's
//! directory: KRB5_CONFIG, server.keytab, alice's ticket cache). Without it there is no KDC
//! to talk to, and the tests say so and return.

use hasocks_syslib::gssapi::{flags, Context, Credential, ErrorKind, Step};

fn realm() -> Option<String> {
    let dir = std::env::var("HASOCKS_KRB5_DIR").ok();
    if dir.is_none() {
        eprintln!("HASOCKS_KRB5_DIR is not set: no realm to test against (tests/interop/gssapi.sh sets it)");
    }
    dir
}

/// Runs both sides to the end; returns (client, server) contexts.
fn establish(dir: &str) -> (Context, Context) {
    let acceptor =
        Credential::acceptor("rcmd", Some(&format!("FILE:{dir}/server.keytab"))).unwrap();
    let mut client = Context::initiate("rcmd@localhost").unwrap();
    let mut server = Context::accept();
    let mut to_server = match client.init_step(None, None).unwrap() {
        Step::Continue(t) => t,
        Step::Done(_) => panic!("mutual authentication needs the server's answer"),
    };
    loop {
        match server.accept_step(Some(&acceptor), &to_server).unwrap() {
            Step::Continue(t) => match client.init_step(None, Some(&t)).unwrap() {
                Step::Continue(t) => to_server = t,
                Step::Done(_) => panic!("client done before server"),
            },
            Step::Done(t) => {
                assert!(matches!(
                    client.init_step(None, Some(&t)).unwrap(),
                    Step::Done(_)
                ));
                return (client, server);
            }
        }
    }
}

#[test]
fn a_kinit_ticket_establishes_a_context_naming_the_principal() {
    let Some(dir) = realm() else { return };
    let (client, server) = establish(&dir);
    assert_eq!(server.peer(), Some("alice@HASOCKS.TEST"));
    assert_ne!(client.flags() & flags::CONF, 0);
    assert_ne!(server.flags() & flags::INTEG, 0);
}

#[test]
fn wrapped_messages_unwrap_on_the_other_side_and_a_replay_is_refused() {
    let Some(dir) = realm() else { return };
    let (mut client, mut server) = establish(&dir);
    for conf in [false, true] {
        let mut token = Vec::new();
        client
            .wrap(conf, b"hello through kerberos", &mut token)
            .unwrap();
        assert_eq!(
            token.windows(5).any(|w| w == b"hello"),
            !conf,
            "conf={conf}"
        );
        let mut plain = Vec::new();
        let mut copy = token.clone();
        assert_eq!(server.unwrap(&mut copy, &mut plain).unwrap(), conf);
        assert_eq!(plain, b"hello through kerberos");
        let mut again = Vec::new();
        let e = server.unwrap(&mut token, &mut again).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Replay, "{e}");
        assert!(again.is_empty());
    }
    let limit = server.wrap_size_limit(true, 65535).unwrap();
    assert!((60000..65535).contains(&limit), "{limit}");
}

#[test]
fn a_replayed_context_token_is_refused_as_a_replay() {
    let Some(dir) = realm() else { return };
    let acceptor =
        Credential::acceptor("rcmd", Some(&format!("FILE:{dir}/server.keytab"))).unwrap();
    let mut client = Context::initiate("rcmd@localhost").unwrap();
    let Step::Continue(token) = client.init_step(None, None).unwrap() else {
        panic!("no first token")
    };
    let mut first = Context::accept();
    assert!(first.accept_step(Some(&acceptor), &token).is_ok());
    let mut second = Context::accept();
    let e = second.accept_step(Some(&acceptor), &token).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Replay, "{e}");
}
