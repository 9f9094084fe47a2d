// Seed 002, "Process and Pool Class": a Process subclass whose run() sleeps a second and prints
// the id it was given. A subclass always starts with fork: the child inherits the object.
//
//     class Process(multiprocessing.Process):
//         def __init__(self, id): ...
//         def run(self):
//             time.sleep(1)
//             print("I'm the process with id: {}".format(self.id))
#include <chrono>
#include <crew/crew.hpp>
#include <iostream>
#include <thread>

class IdProcess : public crew::Process {
  public:
    explicit IdProcess(int id) : id_(id) {}

    void run() override {
        std::this_thread::sleep_for(std::chrono::seconds(1));
        std::cout << "I'm the process with id: " << id_ << std::endl;
    }

  private:
    int id_;
};

int main(int argc, char** argv) {
    crew::init(argc, argv);
    IdProcess p0(0);
    p0.start();
    p0.join();
    IdProcess p1(1);
    p1.start();
    p1.join();
}
