use clap::{Parser, Subcommand};
use fengqiao::app::cli::{Command, Global};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(name = "fengqiao", version, about = "枫桥 基层社会治理平台 (Fengqiao grassroots governance platform)")]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand, Debug)]
enum Top {
    #[command(flatten)]
    App(Command),
    /// Run a benchmark on generated data (see BENCHMARKS.md).
    #[cfg(feature = "bench")]
    Bench(fengqiao::tools::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    fengqiao::platform::telemetry::init(cli.global.log_json);
    let on_sqlite = match &cli.command {
        Top::App(c) => c.on_sqlite(),
        // The bench's headline figures are SQLite's.
        #[cfg(feature = "bench")]
        Top::Bench(_) => true,
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(cli.global.workers(on_sqlite)).enable_all().build();
    let result = match runtime {
        Ok(rt) => rt.block_on(async move {
            match cli.command {
                Top::App(c) => fengqiao::app::cli::run(&cli.global, c).await,
                #[cfg(feature = "bench")]
                Top::Bench(a) => fengqiao::tools::run(a, cli.global.sqlite.options()).await,
            }
        }),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("错误：{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
