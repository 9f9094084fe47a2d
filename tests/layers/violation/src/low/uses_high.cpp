#include "crew/high.hpp"
