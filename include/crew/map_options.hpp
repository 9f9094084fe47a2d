// crew/map_options.hpp: the options of map, starmap, imap and imap_unordered.
//
//     pool.map(f, xs, {.chunksize = 100, .timeout = std::chrono::seconds(5)});
//     for (auto r : pool.imap_unordered(f, xs, {.progress = true, .label = "fitting"})) ...
//
// The same options serve crew::Pool's maps and the executors' map (crew/executor.hpp). chunksize
// is Python's: how many calls go to a worker in one message, 0 to let crew choose
// (crew/detail/chunking.hpp says how). timeout bounds the wait for the results, counted from the
// call: past it the wait throws crew::TimeoutError. progress draws a bar on stderr, as tqdm does.
#pragma once

#include <cstddef>
#include <string>

#include "crew/timeout.hpp"

namespace crew {

// Every member has an initializer, so designated initializers may leave any out.
struct MapOptions {
    std::size_t chunksize = 0;  // 0: automatic
    Timeout timeout = {};       // for the results, from the call
    bool progress = false;      // a progress bar on stderr (plain lines when it is not a terminal)
    std::string label = {};     // the bar's name (tqdm's desc); empty: the call's, "map", "imap"...
};

}  // namespace crew
