//! A hostile push: a few MiB of compressed Automerge change that would
//! inflate to gigabytes. Uses `heph_engine::limits::compressed_change_bomb`.

mod common;

use common::raw::RawClient;
use common::{Hub, devices, eventually, peak_rss_kib};
use heph_engine::NodeId;
use heph_engine::sync::frame::MAX_FRAME_BYTES;

/// Someone pushes a decompression bomb (2.2 GB of zeros in a few MiB) at the
/// hub while two devices are syncing through it. The hub refuses it with an
/// error frame before inflating it, stores nothing of it, stays small, and
/// the devices never notice.
#[test]
fn a_decompression_bomb_is_refused_and_the_hub_stays_small() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::start(dir.path());
    let [a, b] = devices(dir.path(), &hub, ["a", "b"]);
    a.ok(&["add", "Before", "the", "bomb"]);
    eventually(30, "B to receive A's first task", || b.titles(&[]) == ["Before the bomb"]);
    a.wait_synced(&hub, 60);
    b.wait_synced(&hub, 60);
    let head = hub.head();

    let bomb = heph_engine::limits::compressed_change_bomb(2_200_000_000);
    assert!(bomb.len() < MAX_FRAME_BYTES / 2, "the bomb fits in one frame: {} bytes", bomb.len());
    assert!(bomb.len() > 1024 * 1024, "the bomb is the real size: {} bytes", bomb.len());

    let mut raw = RawClient::open(hub.port);
    raw.push(1, &[(NodeId::random(), bomb)]);
    let reply = raw.reply_to(1);
    assert_eq!(reply["type"], "error", "the bomb is refused: {reply}");
    let code = reply["code"].as_str().unwrap();
    assert!(matches!(code, "invalid_change" | "too_large"), "{reply}");
    assert_eq!(reply["close"], true, "{reply}");
    raw.expect_closed();

    assert_eq!(hub.head(), head, "nothing of the bomb is stored");
    let peak = peak_rss_kib(hub.proc.pid());
    assert!(peak < 200 * 1024, "the hub's peak RSS is {} MiB", peak / 1024);

    // The devices kept syncing through it all.
    a.ok(&["add", "After", "the", "bomb"]);
    eventually(60, "B to receive the task added after the bomb", || b.titles(&[]).len() == 2);
    b.ok(&["add", "Reply", "from", "B"]);
    eventually(60, "A to receive B's task", || a.titles(&[]).len() == 3);
    for d in [&a, &b] {
        d.wait_settled(&hub, 60);
        assert_eq!(d.status()["connected"], true, "{}", d.name);
    }
    assert!(peak_rss_kib(hub.proc.pid()) < 200 * 1024);
}
