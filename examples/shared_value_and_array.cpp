// Seed 001's FAQ, "shared memory methods ... the Value and Array classes, which let you make
// shared variables and collections", with Python's own example of them:
//
//     def f(n, a):
//         n.value = 3.1415927
//         for i in range(len(a)):
//             a[i] = -a[i]
//
//     num = Value('d', 0.0)
//     arr = Array('i', range(10))
//     p = Process(target=f, args=(num, arr))
//     p.start(); p.join()
//     print(num.value)
//     print(arr[:])
#include <crew/crew.hpp>
#include <iostream>
#include <mutex>

void f(crew::Value<double> n, crew::Array<int> a) {
    n.set(3.1415927);
    std::lock_guard hold(a.get_lock());  // Python locks each element; here, the whole pass
    for (int& element : a) element = -element;
}

int main(int argc, char** argv) {
    crew::init(argc, argv);
    crew::Value<double> num(0.0);
    crew::Array<int> arr(crew::range(10));
    crew::Process p(f, num, arr);
    p.start();
    p.join();
    std::cout.precision(8);
    std::cout << num.value() << '\n';
    std::cout << "[";
    for (std::size_t i = 0; i < arr.size(); ++i) std::cout << (i ? ", " : "") << arr[i];
    std::cout << "]" << std::endl;
}
