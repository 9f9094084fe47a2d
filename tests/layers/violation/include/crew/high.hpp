#pragma once

#include "crew/low.hpp"
