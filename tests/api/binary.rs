//! The real binary as an operator runs it: `fengqiao serve` in its own
//! process, and residents reporting to it.

use std::{process::Stdio, time::Duration};

use serde_json::json;
use tokio::io::AsyncBufReadExt;

/// A `fengqiao serve` process and the address it serves at.
pub struct Server {
    pub child: tokio::process::Child,
    pub base: String,
}

impl Server {
    /// Spawns `command` (a `fengqiao serve --listen 127.0.0.1:0 …`) and waits
    /// until it says where it serves.
    pub async fn spawn(mut command: tokio::process::Command) -> Server {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true).spawn().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(i) = line.find("http://") {
                    return line[i..].trim_end_matches('/').to_string();
                }
            }
            panic!("the server stopped before serving");
        })
        .await
        .expect("the server did not start within a minute");
        // Keep reading what it prints, so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server { child, base }
    }

    /// A graceful stop, as by systemd or `kill`.
    pub async fn terminate(mut self) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.unwrap().unwrap();
        assert!(exit.success(), "graceful stop: {exit}");
    }
}

/// A resident's report; answers its tracking code once the server has
/// acknowledged it, `None` if the server did not (it is gone).
pub async fn report(client: &reqwest::Client, base: &str, root: i64, n: usize) -> Option<String> {
    let body = json!({"category_code": "0303", "title": format!("路灯不亮 {n}"),
        "description": "3号楼前的两盏路灯一周不亮了，晚上很黑。", "address": "黑龙潭社区3号楼前", "node_id": root});
    let r = client.post(format!("{base}/api/v1/portal/orders")).json(&body).send().await.ok()?;
    if r.status() != reqwest::StatusCode::CREATED {
        return None;
    }
    let v: serde_json::Value = r.json().await.ok()?;
    Some(v["tracking_code"].as_str()?.to_string())
}
