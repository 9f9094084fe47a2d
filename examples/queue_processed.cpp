// A worker puts a message on a crew::Queue for the parent, as in the seed's Python:
//
//     def worker(queue):
//         queue.put('Processed!')
//
//     queue = Queue()
//     p = Process(target=worker, args=(queue,))
//     p.start()
//     print(queue.get())
//     p.join()
#include <crew/crew.hpp>
#include <iostream>
#include <string>

void worker(crew::Queue<std::string> queue) {
    queue.put("Processed!");
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::Queue<std::string> queue;
    crew::Process p(worker, queue);
    p.start();
    std::cout << queue.get() << std::endl;
    p.join();
}
