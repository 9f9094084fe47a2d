# A tree that breaks the include rules on purpose: crew.include_rules_catch_a_violation runs the
# check on it and expects the violation to be named.
set(crew_layers low high)
set(crew_low_headers low.hpp)
set(crew_high_headers high.hpp)
