// The calling thread's emulated tile unit (simd/x86/amx_emulator.h), as an
// emulated path's kernel table offers it to the tests (KernelTable::
// emulated_tiles): the tile state contract and the emulator's own rules. No
// intrinsics, no library types: the emulator's file is built with ISA flags.
#pragma once

namespace iqk {

struct EmulatedTiles {
  // Configured now? (Every kernel call releases the tiles.)
  bool (*configured)();
  // A foreign configuration with data in every tile, as another library in
  // the process may leave it.
  void (*disturb)();
  // Runs tile operations whose results the architecture defines (rows past
  // the configuration read as zero, stores write only the configured shape,
  // int32 wrap-around) and says whether the emulator got them all right.
  bool (*self_check)();
  // Performs the use named `misuse`, one the hardware faults on: the
  // emulator aborts the process with a message. Unknown names do nothing and
  // return false.
  bool (*misuse)(const char* misuse);
};

}  // namespace iqk
