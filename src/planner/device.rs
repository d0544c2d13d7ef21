//! What this machine has: CPU RAM, CUDA GPUs (through `nvidia-smi`, so no
//! CUDA toolkit is needed to build or run), Apple Metal (unified memory).

use std::process::Command;

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Cpu,
    Cuda,
    Metal,
}

#[derive(Debug, Clone, Serialize)]
pub struct Device {
    pub kind: DeviceKind,
    /// `cuda:0`, `metal`, `cpu`.
    pub id: String,
    pub name: String,
    pub total_bytes: u64,
    /// Free (CUDA) or available (CPU) memory now; Metal: the recommended
    /// working set (about 3/4 of unified memory).
    pub free_bytes: u64,
    /// CUDA compute capability, e.g. (8, 0).
    pub compute_capability: Option<(u32, u32)>,
}

impl Device {
    /// bf16 is fast and exact enough to train in: CUDA sm80+ and Apple
    /// silicon. Older GPUs get f16; the CPU computes in f32.
    pub fn supports_bf16(&self) -> bool {
        match self.kind {
            DeviceKind::Cuda => self.compute_capability.is_some_and(|(major, _)| major >= 8),
            DeviceKind::Metal => true,
            DeviceKind::Cpu => false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub cpu: Device,
    pub gpus: Vec<Device>,
}

impl Inventory {
    /// This machine's best device: the GPU with the most free memory (CUDA,
    /// else Apple Metal), else the CPU.
    pub fn primary(&self) -> &Device {
        self.gpus
            .iter()
            .max_by_key(|d| d.free_bytes)
            .unwrap_or(&self.cpu)
    }

    /// The device of `kind` with the most free memory, if the machine has one.
    pub fn best_of(&self, kind: DeviceKind) -> Option<&Device> {
        if kind == DeviceKind::Cpu {
            return Some(&self.cpu);
        }
        self.gpus
            .iter()
            .filter(|d| d.kind == kind)
            .max_by_key(|d| d.free_bytes)
    }
}

/// Where the GPU list of an inventory comes from. The command layer decides
/// (it reads the environment once); this module never reads it.
#[derive(Debug, Clone)]
pub enum GpuSource {
    /// Ask the machine (`nvidia-smi`, Apple Metal).
    Probe,
    /// Report none (`SWIFT_NO_GPU`).
    None,
    /// Report these instead of probing (tests, or planning for a described
    /// machine): `nvidia-smi` CSV lines, see [`parse_nvidia_smi`].
    Given(Vec<Device>),
}

/// Look at the machine. Never fails: a missing `nvidia-smi` means no CUDA.
pub fn detect(gpus: GpuSource) -> Inventory {
    let gpus = match gpus {
        GpuSource::Probe => {
            let mut g = detect_cuda();
            if g.is_empty() {
                g.extend(detect_metal());
            }
            g
        }
        GpuSource::None => Vec::new(),
        GpuSource::Given(g) => g,
    };
    Inventory {
        cpu: detect_cpu(),
        gpus,
    }
}

pub fn detect_cpu() -> Device {
    let (total, available) = meminfo().unwrap_or_else(|| {
        let mut sys = sysinfo::System::new();
        sys.refresh_memory();
        (sys.total_memory(), sys.available_memory())
    });
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    Device {
        kind: DeviceKind::Cpu,
        id: "cpu".into(),
        name: format!(
            "{} ({cores} threads)",
            cpu_name().unwrap_or_else(|| "CPU".into())
        ),
        total_bytes: total,
        free_bytes: available,
        compute_capability: None,
    }
}

fn meminfo() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("MemTotal:")?, field("MemAvailable:")?))
}

fn cpu_name() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// Parse `nvidia-smi --query-gpu=index,name,memory.total,memory.free,compute_cap
/// --format=csv,noheader,nounits` output (MiB); `;` separates lines too.
pub fn parse_nvidia_smi(text: &str) -> Vec<Device> {
    text.split(['\n', ';'])
        .filter_map(|line| {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() < 4 {
                return None;
            }
            let index: u32 = f[0].parse().ok()?;
            let total: u64 = f[2].parse().ok()?;
            let free: u64 = f[3].parse().ok()?;
            let cc = f.get(4).and_then(|s| {
                let (a, b) = s.split_once('.')?;
                Some((a.parse().ok()?, b.parse().ok()?))
            });
            Some(Device {
                kind: DeviceKind::Cuda,
                id: format!("cuda:{index}"),
                name: f[1].to_string(),
                total_bytes: total * 1024 * 1024,
                free_bytes: free * 1024 * 1024,
                compute_capability: cc,
            })
        })
        .collect()
}

fn detect_cuda() -> Vec<Device> {
    let out = Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,memory.total,memory.free,compute_cap",
            "--format=csv,noheader,nounits",
        ])
        .output();
    match out {
        Ok(o) if o.status.success() => parse_nvidia_smi(&String::from_utf8_lossy(&o.stdout)),
        _ => Vec::new(),
    }
}

#[cfg(target_os = "macos")]
fn detect_metal() -> Option<Device> {
    if !cfg!(target_arch = "aarch64") {
        return None;
    }
    let out = Command::new("sysctl")
        .args(["-n", "hw.memsize"])
        .output()
        .ok()?;
    let total: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some(Device {
        kind: DeviceKind::Metal,
        id: "metal".into(),
        name: "Apple GPU (unified memory)".into(),
        total_bytes: total,
        free_bytes: total / 4 * 3,
        compute_capability: None,
    })
}

#[cfg(not(target_os = "macos"))]
fn detect_metal() -> Option<Device> {
    None
}

/// Parse a memory size: `24GiB`, `24 GB`, `24g`, `16000MiB`, `1.5T`; a bare
/// number means GiB.
pub fn parse_size(s: &str) -> Option<u64> {
    parse_size_bare(s, 1024f64.powi(3))
}

/// [`parse_size`] with a bare number counted in units of `bare` bytes (1 for
/// transformers-style `max_shard_size` values).
pub fn parse_size_bare(s: &str, bare: f64) -> Option<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" => bare,
        "g" | "gib" => 1024f64.powi(3),
        "gb" => 1e9,
        "m" | "mib" => 1024f64.powi(2),
        "mb" => 1e6,
        "t" | "tib" => 1024f64.powi(4),
        "tb" => 1e12,
        "k" | "kib" => 1024.0,
        "kb" => 1e3,
        "b" => 1.0,
        _ => return None,
    };
    Some((n * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_lines() {
        let d = parse_nvidia_smi(
            "0, NVIDIA H200, 143771, 143000, 9.0\n1, Tesla T4, 15360, 15000, 7.5\n",
        );
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].id, "cuda:0");
        assert_eq!(d[0].total_bytes, 143771 * 1024 * 1024);
        assert!(d[0].supports_bf16());
        assert!(!d[1].supports_bf16());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("24GiB"), Some(24 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("24"), Some(24 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("16 GB"), Some(16_000_000_000));
        assert_eq!(parse_size("512MiB"), Some(512 * 1024 * 1024));
        assert_eq!(parse_size("1.5g"), Some(1610612736));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("12 parsecs"), None);
    }

    #[test]
    fn cpu_has_memory() {
        let cpu = detect_cpu();
        assert!(cpu.total_bytes > 0);
        assert!(cpu.free_bytes <= cpu.total_bytes);
    }
}
