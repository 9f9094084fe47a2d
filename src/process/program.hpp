// process/program.hpp: what crew::init recorded about the program.
#pragma once

#include <string>
#include <vector>

namespace crew::detail {

// Whether crew::init has run in this program.
bool initialized();
// The argv given to crew::init, with which spawn children execute the program.
const std::vector<std::string>& program_arguments();

}  // namespace crew::detail
