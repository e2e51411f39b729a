use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = fengqiao::cli::Cli::parse();
    fengqiao::telemetry::init(cli.log_json);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(cli.workers()).enable_all().build();
    let result = match runtime {
        Ok(rt) => rt.block_on(fengqiao::cli::run(cli)),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("错误: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
