//! `mcplock scan`: start a server, read everything it offers, print it.

use super::exit::{Code, fail};
use super::live::scan_stable;
use super::render::{self, pretty};
use super::{CliError, Format, Output, ScanArgs};
use crate::core::lockfile::ServerLock;

pub async fn run(args: ScanArgs) -> Result<Output, CliError> {
    let mut scanned = scan_stable(&args.server, &args.repeat, true).await?;
    // Names that look alike within the server (lock also compares with the other servers).
    let name = scanned
        .snapshot
        .server_name()
        .unwrap_or("server")
        .to_string();
    let found = crate::core::confusable::in_snapshot(&name, &scanned.snapshot);
    scanned
        .notes
        .extend(crate::core::confusable::notes(&found, None));
    Ok(Output::lazy(None, move |format| {
        Ok(match format {
            Format::Json => render::json(&scanned.snapshot),
            Format::Sarif => {
                // A scan writes no file: results are located by name only (lock's are in it).
                let entry = ServerLock::from_snapshot(scanned.snapshot, true)
                    .map_err(|e| fail(Code::Internal, e.to_string()))?;
                pretty(&super::sarif::findings_log(
                    "mcplock/scan/",
                    &[(&name, &entry)],
                    None,
                    0,
                ))
            }
            _ => render::human(&scanned),
        })
    }))
}
