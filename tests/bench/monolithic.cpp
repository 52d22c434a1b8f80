// The "before" of the start-up benchmark: the whole program linked as one dynamic executable,
// as gpuhook was before its executable loaded the rest of itself only when needed.
extern "C" int gpuhook_main(int argc, char** argv);
int main(int argc, char** argv) { return gpuhook_main(argc, argv); }
