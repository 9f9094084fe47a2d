// crew/init.hpp: crew::init, the recommended first line of main, and crew::cpu_count.
//
//     int main(int argc, char** argv) {
//         crew::init(argc, argv);
//         ...
//     }
//
// In the program itself, init records argv and starts the fork server while the program has a
// single thread. In a child started with the spawn method (a new run of the same program), init
// does not return: it runs the child's target and ends the process with its exit code. So spawn
// requires init, and init must come before anything main should not do twice. Calling init again
// does nothing. Without init, forkserver and fork still work; starting a spawn child throws.
#pragma once

namespace crew {

void init(int argc, char** argv);

// The number of CPUs this process may run on (its affinity mask): the default number of workers.
int cpu_count();

}  // namespace crew
