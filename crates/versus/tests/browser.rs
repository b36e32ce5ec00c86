//! stub
#[test]
fn stub() {
    let _ = fantoccini::ClientBuilder::rustls();
}
