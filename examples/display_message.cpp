// Seed 000, "Using Process, Queue, and Pipe": two processes that each print a message.
//
//     from multiprocessing import Process
//     p1 = Process(target=display_message, args=('Hello from Process 1',))
#include <crew/crew.hpp>
#include <iostream>
#include <string>

void display_message(std::string message) {
    std::cout << message << std::endl;
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::Process p1(display_message, "Hello from Process 1");
    crew::Process p2(display_message, "Hello from Process 2");
    p1.start();
    p2.start();
    p1.join();
    p2.join();
}
