// The main demo: crew::Process under each start method, and a parent that outlives its children's
// crashes. Run by the README's first command.
#include <unistd.h>

#include <chrono>
#include <crew/crew.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>

void greet(std::string from) {
    std::cout << "  hello from " << from << " (pid " << getpid() << ")" << std::endl;
}

void crash() {
    std::raise(SIGSEGV);
}
void fail() {
    throw std::runtime_error("something went wrong in the child");
}
void quit() {
    std::exit(7);
}
void nap() {
    std::this_thread::sleep_for(std::chrono::hours(1));
}

std::string describe(const crew::Process& p, std::optional<int> exitcode) {
    return p.name() + " exitcode " + (exitcode ? std::to_string(*exitcode) : "(running)");
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    std::cout << "crew demo: parent pid " << getpid() << ", " << crew::cpu_count() << " CPUs\n";

    for (auto method :
         {crew::StartMethod::forkserver, crew::StartMethod::fork, crew::StartMethod::spawn}) {
        std::cout << "start method " << crew::to_string(method) << ":" << std::endl;
        auto started = std::chrono::steady_clock::now();
        crew::Process p({.start_method = method}, greet, crew::to_string(method).data());
        p.start();
        p.join();
        auto took =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started);
        std::cout << "  started and joined in " << took.count() << " us, exitcode " << *p.exitcode()
                  << std::endl;
    }

    std::cout << "children that fail, and a parent that carries on:" << std::endl;
    crew::Process segfault(crash), thrower(fail), exiter(quit), sleeper(nap);
    for (crew::Process* p : {&segfault, &thrower, &exiter, &sleeper}) p->start();
    sleeper.join(std::chrono::milliseconds(100));
    sleeper.terminate();
    for (crew::Process* p : {&segfault, &thrower, &exiter, &sleeper}) {
        p->join();
        std::cout << "  " << describe(*p, p->exitcode()) << std::endl;
    }
    std::cout << "the parent is fine." << std::endl;
}
