{
  "targets": [
    {
      "target_name": "mp_native",
      "sources": [
        "native/addon.cc",
        "native/shm.cc",
        "native/futex.cc",
        "native/futex-uring.cc",
        "native/pdeathsig.cc",
        "native/serialize.cc",
        "native/recycle.cc",
        "native/listen.cc",
        "native/fd-share.cc"
      ],
      "cflags_cc": ["-std=c++17", "-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-lrt"],
      "ldflags": ["-Wl,-z,nodelete"],
      "conditions": [
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
