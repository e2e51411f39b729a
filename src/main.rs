use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = fengqiao::cli::Cli::parse();
    fengqiao::telemetry::init(cli.log_json);
    match fengqiao::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("错误: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
