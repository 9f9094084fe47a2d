#include "crew/low.hpp"
