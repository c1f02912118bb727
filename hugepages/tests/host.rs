//! Reservation and mounting on the real host. They change the machine, so
//! they run only as root (under CI, which is root, they must run); each
//! puts back what it changed.

use std::path::Path;

use hugepages::{MountOutcome, PageSize, System};
use skua_suite::skip;

#[test]
fn reserve_two_more_pages_on_node_0_then_put_them_back() {
    if !skip::root_or_skip() {
        return;
    }
    let sys = System::host();
    let nodes = match sys.nodes() {
        Ok(n) => n,
        Err(e) => {
            skip::missing(&format!("hugepage pools in sysfs ({e})"));
            return;
        }
    };
    let Some(before) = nodes[0].pool(PageSize::M2).cloned() else {
        skip::missing("a 2 MiB hugepage pool");
        return;
    };
    let node = sys.numa().then_some(nodes[0].node);
    let want = before.total + 2;
    let result = sys.reserve(node, PageSize::M2, want);
    // Put the pool back whatever happened (pages others use stay theirs).
    let after = sys.nodes().unwrap()[0].pool(PageSize::M2).cloned().unwrap();
    sys.reserve(node, PageSize::M2, before.total).expect("restoring the pool");
    match result {
        Ok(r) => {
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].total, want);
            assert_eq!(after.total, want);
            println!(
                "node 0: {} → {} × 2 MiB pages, put back to {}",
                before.total, want, before.total
            );
        }
        // A machine too short of memory for two more pages says so by name.
        Err(e @ hugepages::ReserveError::NotEnoughMemory { .. }) => eprintln!("note: {e}"),
        Err(e) => panic!("{e}"),
    }
    assert_eq!(sys.nodes().unwrap()[0].pool(PageSize::M2).unwrap().total, before.total);
}

#[test]
fn mount_hugetlbfs_on_a_fresh_directory_then_unmount() {
    if !skip::root_or_skip() {
        return;
    }
    let sys = System::host();
    if sys.nodes().map(|n| n.iter().all(|n| n.pool(PageSize::M2).is_none())).unwrap_or(true) {
        skip::missing("a 2 MiB hugepage pool");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge");
    assert_eq!(sys.mount(&path, PageSize::M2).unwrap(), MountOutcome::Mounted);
    let m = sys.mount_at(&path).unwrap().expect("listed in /proc/mounts");
    assert_eq!(m.page_size_kib, Some(2048));
    assert_eq!(sys.mount(&path, PageSize::M2).unwrap(), MountOutcome::AlreadyMounted);
    let clash = sys.mount(&path, PageSize::G1).unwrap_err().to_string();
    assert!(clash.contains("already has a hugetlbfs mount"), "{clash}");
    sys.unmount(&path).unwrap();
    assert!(sys.mount_at(Path::new(&path)).unwrap().is_none());
}
