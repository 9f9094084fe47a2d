#include <gtest/gtest.h>

#include <crew/init.hpp>

int main(int argc, char** argv) {
    crew::init(argc, argv);  // first: in a spawn child of a test, this runs the child and ends
    testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
