// A program crew's tests run and watch from outside. Usage: process_program COMMAND METHOD [N]
//   throw               a child throws; prints the child's exitcode
//   atexit              registers an atexit handler, runs a child, exits normally
//   exit-with-children  calls exit() while a daemon and a non-daemon child run
//   orphans N           starts N children that sleep, prints their pids, sleeps until killed
//   log                 runs a child with crew::log_to_stderr() on
//   log-death           the same, on stdout, with a child that sleeps; prints "child pid N" and
//                       sleeps 30 s before joining it (the test kills the child meanwhile)
//   spawn-without-init  tries a spawn child without calling crew::init
//   interrupt-map       prints its pool's worker pids, "ready", then waits in a long map: the
//                       test sends SIGINT; prints "interrupted after N ms" when map throws
//   interrupt-idle      prints its pool's worker pids and "ready", then sleeps outside crew
//   interrupt-in WAIT   prints its workers' pids and "ready", then waits in WAIT
//                       (as-completed, wait, map, imap, queue-get or
//                       connection-wait) until the test's SIGINT;
//                       prints "interrupted after N ms" when the wait throws crew::Interrupted
//   shared-memory NAME  creates shared memory NAME, hands it to a child that sleeps, prints the
//                       child's pid and "ready", then sleeps until killed
#include <unistd.h>

#include <chrono>
#include <crew/crew.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

void do_nothing() {}
void throw_error() {
    throw std::runtime_error("thrown in the child");
}
void sleep_for_ms(int milliseconds) {
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
}
int sleep_for_ms_returning(int milliseconds) {
    sleep_for_ms(milliseconds);
    return milliseconds;
}
void sleep_then_report() {
    sleep_for_ms(300);
    std::cout << "the non-daemon child finished" << std::endl;
}
int worker_pid(int) {
    return getpid();
}
void hold_memory(crew::SharedMemory memory) {
    memory.buf()[0] = std::byte{1};
    sleep_for_ms(60'000);
}
void say_atexit() {
    const char line[] = "atexit handler ran\n";
    (void)!write(STDOUT_FILENO, line, sizeof line - 1);
}

crew::StartMethod parse_method(const std::string& name) {
    for (auto method :
         {crew::StartMethod::forkserver, crew::StartMethod::fork, crew::StartMethod::spawn}) {
        if (crew::to_string(method) == name) return method;
    }
    throw std::invalid_argument("unknown start method " + name);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "spawn-without-init") {
        try {
            crew::Process p({.start_method = crew::StartMethod::spawn}, do_nothing);
            p.start();
            std::cout << "started without init\n";
            return 1;
        } catch (const crew::Error& error) {
            std::cout << error.what() << '\n';
            return 0;
        }
    }
    crew::init(argc, argv);
    if (argc < 3) {
        std::cerr << "usage: process_program COMMAND METHOD [N]\n";
        return 2;
    }
    std::string command = argv[1];
    crew::ProcessOptions options{.start_method = parse_method(argv[2])};

    if (command == "throw") {
        crew::Process p(options, throw_error);
        p.start();
        p.join();
        std::cout << "exitcode " << *p.exitcode() << std::endl;
    } else if (command == "atexit") {
        std::atexit(say_atexit);
        crew::Process p(options, do_nothing);
        p.start();
        p.join();
    } else if (command == "exit-with-children") {
        crew::ProcessOptions daemon_options = options;
        daemon_options.daemon = true;
        crew::Process daemon(daemon_options, sleep_for_ms, 60'000);
        crew::Process worker(options, sleep_then_report);
        daemon.start();
        worker.start();
        std::cout << "daemon pid " << *daemon.pid() << std::endl;
        std::exit(0);  // no destructor runs: crew's exit handler must end both children
    } else if (command == "orphans") {
        int count = argc > 3 ? std::atoi(argv[3]) : 1;
        std::vector<crew::Process> children;
        for (int i = 0; i < count; ++i) children.emplace_back(options, sleep_for_ms, 60'000);
        for (auto& child : children) {
            child.start();
            std::cout << "child pid " << *child.pid() << std::endl;
        }
        std::cout << "ready" << std::endl;
        sleep_for_ms(60'000);
        for (auto& child : children) child.kill();
    } else if (command == "interrupt-map" || command == "interrupt-idle") {
        crew::Pool pool({.processes = 2, .start_method = options.start_method});
        std::vector<int> pids = pool.map(worker_pid, crew::range(20), 1);
        for (int pid : std::set<int>(pids.begin(), pids.end())) {
            std::cout << "worker pid " << pid << std::endl;
        }
        if (command == "interrupt-idle") {
            std::cout << "ready" << std::endl;
            sleep_for_ms(60'000);
            return 0;
        }
        auto result = pool.map_async(sleep_for_ms_returning, std::vector<int>(40, 1'000), 1);
        std::thread announce([] {
            sleep_for_ms(200);  // by then the main thread waits in get()
            std::cout << "ready" << std::endl;
        });
        auto start = std::chrono::steady_clock::now();
        try {
            result.get();
            std::cout << "map finished without an interrupt" << std::endl;
        } catch (const crew::Interrupted& error) {
            auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start);
            std::cout << "interrupted after " << waited.count() << " ms: " << error.what()
                      << std::endl;
        }
        announce.join();
        try {
            pool.apply(worker_pid, 0);
        } catch (const crew::Error& error) {
            std::cout << "afterwards: " << error.what() << std::endl;
        }
    } else if (command == "interrupt-in" && argc > 3) {
        const std::string wait = argv[3];
        crew::ProcessPoolExecutor executor(
            {.max_workers = 2, .start_method = options.start_method});
        crew::Pool pool({.processes = 2, .start_method = options.start_method});
        std::set<int> pids;
        for (int attempt = 0; attempt < 50 && pids.size() < 2; ++attempt) {
            std::vector<crew::Future<int>> probes;
            for (int i = 0; i < 20; ++i) probes.push_back(executor.submit(worker_pid, i));
            for (auto& probe : probes) pids.insert(probe.result());
        }
        std::vector<int> pool_pids = pool.map(worker_pid, crew::range(20), 1);
        pids.insert(pool_pids.begin(), pool_pids.end());
        for (int pid : pids) std::cout << "worker pid " << pid << std::endl;
        std::thread announce;
        auto announce_soon = [&announce] {
            announce = std::thread([] {
                sleep_for_ms(300);  // by then the main thread is in its wait, or its loop of waits
                std::cout << "ready" << std::endl;
            });
        };
        auto start = std::chrono::steady_clock::now();
        try {
            if (wait == "as-completed") {
                // Each wait ends with a result: the interrupt must not be lost between them.
                std::vector<crew::Future<int>> futures;
                for (int i = 0; i < 20'000; ++i) {
                    futures.push_back(executor.submit(sleep_for_ms_returning, 1));
                }
                announce_soon();
                for (auto& future : crew::as_completed(futures)) (void)future.result();
            } else if (wait == "wait") {
                std::vector<crew::Future<int>> futures;
                for (int i = 0; i < 40; ++i) {
                    futures.push_back(executor.submit(sleep_for_ms_returning, 1'000));
                }
                announce_soon();
                crew::wait(futures);
            } else if (wait == "map") {
                announce_soon();
                (void)pool.map(sleep_for_ms_returning, std::vector<int>(40, 1'000), 1);
            } else if (wait == "imap") {
                announce_soon();
                for (int result : pool.imap(sleep_for_ms_returning, std::vector<int>(4'000, 5))) {
                    (void)result;
                }
            } else if (wait == "queue-get") {
                crew::Queue<int> queue;
                announce_soon();
                (void)queue.get();
            } else if (wait == "connection-wait") {
                crew::Queue<int> queue;
                auto [receiving, sending] = crew::Pipe<int>();
                announce_soon();
                (void)crew::wait({queue, receiving});
            }
            std::cout << wait << " finished without an interrupt" << std::endl;
        } catch (const crew::Interrupted& error) {
            auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start);
            std::cout << "interrupted after " << waited.count() << " ms: " << error.what()
                      << std::endl;
        }
        if (announce.joinable()) announce.join();
    } else if (command == "shared-memory" && argc > 3) {
        crew::SharedMemory memory = crew::SharedMemory::create(argv[3], 1 << 20);
        crew::Process child(options, hold_memory, memory);
        child.start();
        std::cout << "child pid " << *child.pid() << std::endl;
        std::cout << "ready" << std::endl;
        sleep_for_ms(60'000);
        child.kill();
    } else if (command == "log") {
        crew::log_to_stderr();
        crew::Process p(options, do_nothing);
        p.start();
        p.join();
    } else if (command == "log-death") {
        ::dup2(STDOUT_FILENO, STDERR_FILENO);  // the log lines come on stdout, for the test
        crew::log_to_stderr();
        crew::Process p(options, sleep_for_ms, 60'000);
        p.start();
        std::cout << "child pid " << *p.pid() << std::endl;
        sleep_for_ms(30'000);  // outside crew: only crew's own thread can see the child end
        p.join();
    } else {
        std::cerr << "unknown command " << command << '\n';
        return 2;
    }
    return 0;
}
