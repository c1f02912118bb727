//! The Helm chart, offline: `deploy/helm/test_chart.py` renders and lints it
//! with helm-python-sdk (Helm's Go SDK as a shared library from PyPI, no
//! helm binary), validates every object with kubernetes-validate, and checks
//! the invariants (Guaranteed QoS with integer CPUs, hugepages requests =
//! limits, capabilities, nothing privileged, the SR-IOV resource name from
//! the values), for the default values and the SR-IOV values file.
//!
//! The Python packages go into a venv under the target dir, made once. With
//! no python3-venv or no PyPI the test skips (`skip::missing`: under CI a
//! failure; `.ci/run` installs python3-venv).

use std::path::{Path, PathBuf};
use std::process::Command;

use skua_suite::{skip, skua_bin};

const REQUIREMENTS: [&str; 2] = ["helm-python-sdk==0.2.2", "kubernetes-validate==1.37.0"];

/// A venv with the requirements, or why there is none.
fn venv() -> Result<PathBuf, String> {
    let dir = std::env::var_os("SKUA_HELM_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("skua-helm-venv"));
    let python = dir.join("bin/python");
    let marker = dir.join(".skua-requirements");
    let wanted = REQUIREMENTS.join("\n");
    if python.exists() && std::fs::read_to_string(&marker).is_ok_and(|m| m == wanted) {
        return Ok(python);
    }
    let _ = std::fs::remove_dir_all(&dir);
    // Debian's python3 first: python3-venv is what CI installs for it.
    let mut errors = Vec::new();
    let mut made = false;
    for candidate in ["/usr/bin/python3", "python3"] {
        match Command::new(candidate).args(["-m", "venv"]).arg(&dir).output() {
            Ok(o) if o.status.success() && python.exists() => {
                made = true;
                break;
            }
            Ok(o) => errors.push(format!(
                "{candidate} -m venv: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Err(e) => errors.push(format!("{candidate}: {e}")),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    if !made {
        return Err(format!(
            "no working `python3 -m venv` (apt-get install python3-venv python3-pip): {}",
            errors.join("; ")
        ));
    }
    let out = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
        .args(REQUIREMENTS)
        .output()
        .map_err(|e| format!("running pip: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "pip install {} failed: {}",
            REQUIREMENTS.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    std::fs::write(&marker, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}

#[test]
fn chart_renders_lints_validates_and_keeps_its_invariants() {
    let python = match venv() {
        Ok(p) => p,
        Err(why) => return skip::missing(&why),
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&python)
        .arg(root.join("deploy/helm/test_chart.py"))
        .arg("--chart")
        .arg(root.join("deploy/helm/skua"))
        .arg("--values")
        .arg(root.join("deploy/examples/sriov/values-sriov.yaml"))
        .arg("--skua")
        .arg(skua_bin())
        .output()
        .expect("running test_chart.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "chart checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("== default values: ") && stdout.contains("== values-sriov.yaml: "),
        "{stdout}"
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

/// The node-setup script, the worker entrypoint and the systemd units parse;
/// `systemd-analyze verify` finds nothing but the binaries this machine has
/// not installed under /usr/local.
#[test]
fn deploy_scripts_and_units_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ok = |cmd: &mut Command| {
        let out = cmd.output().expect("running a shell");
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(Command::new("bash").arg("-n").arg(root.join("deploy/node-setup.sh")));
    ok(Command::new("sh").arg("-n").arg(root.join("deploy/helm/skua/files/worker-entrypoint.sh")));
    let help = ok(Command::new("bash").arg(root.join("deploy/node-setup.sh")).arg("--help"));
    assert!(help.contains("--check") && help.contains("dpdk-devbind.py"), "{help}");
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        skip::missing("systemd-analyze (Debian package systemd)");
        return;
    };
    assert!(out.status.success());
    for unit in ["skua-worker.service", "skua-hub.service"] {
        // verify wants the unit under its own name; a scratch copy keeps the
        // tree clean.
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join(unit);
        std::fs::copy(root.join("deploy/systemd").join(unit), &copy).unwrap();
        let out = Command::new("systemd-analyze").arg("verify").arg(&copy).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // verify also loads the units ours name (network.target ...), and
        // reports what it finds wrong in the machine's own units: only lines
        // about our unit count.
        let ours = copy.display().to_string();
        for line in err.lines().filter(|l| l.starts_with(unit) || l.contains(&ours)) {
            assert!(
                line.contains("is not executable: No such file or directory"),
                "{unit}: {line}"
            );
        }
    }
}
