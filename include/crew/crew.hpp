// crew/crew.hpp: all of crew in one include.
//
//     #include <crew/crew.hpp>
//
//     int square(int x) { return x * x; }
//
//     int main(int argc, char** argv) {
//         crew::init(argc, argv);
//         crew::Process p(square, 7);
//         p.start();
//         p.join();
//     }
#pragma once

#include "crew/error.hpp"
#include "crew/estimate.hpp"
#include "crew/executor.hpp"
#include "crew/future.hpp"
#include "crew/init.hpp"
#include "crew/log.hpp"
#include "crew/map_reduce.hpp"
#include "crew/parallel.hpp"
#include "crew/parallel_backend.hpp"
#include "crew/pipe.hpp"
#include "crew/pool.hpp"
#include "crew/process.hpp"
#include "crew/progress.hpp"
#include "crew/queue.hpp"
#include "crew/range.hpp"
#include "crew/remote_exception.hpp"
#include "crew/serialization.hpp"
#include "crew/shared_memory.hpp"
#include "crew/shared_value.hpp"
#include "crew/start_method.hpp"
#include "crew/synchronize.hpp"
#include "crew/timeout.hpp"
#include "crew/wait.hpp"
