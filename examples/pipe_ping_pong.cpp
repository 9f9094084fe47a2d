// A ping-pong over crew::Pipe, as with Python's multiprocessing.Pipe:
//
//     def player(connection):
//         while True:
//             try:
//                 ball = connection.recv()
//             except EOFError:
//                 return
//             connection.send(ball + 1)
//
//     parent, child = Pipe()
//     p = Process(target=player, args=(child,)); p.start(); child.close()
//     for _ in range(3):
//         parent.send(ball); ball = parent.recv(); print("ball", ball)
//     parent.close(); p.join()
#include <crew/crew.hpp>
#include <iostream>

void player(crew::Connection<int> connection) {
    while (true) {
        int ball = 0;
        try {
            ball = connection.recv();
        } catch (const crew::EOFError&) {
            return;  // the parent closed its end
        }
        connection.send(ball + 1);
    }
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    auto [parent, child] = crew::Pipe<int>();
    crew::Process p(player, std::move(child));  // moved: the parent keeps no copy of that end
    p.start();
    int ball = 0;
    for (int hit = 0; hit < 3; ++hit) {
        parent.send(ball + 1);
        ball = parent.recv();
        std::cout << "ball " << ball << std::endl;
    }
    parent.close();
    p.join();
    std::cout << "player exitcode " << *p.exitcode() << std::endl;
}
