package restore

// utimeOmit leaves a time unchanged in utimensat: UTIME_OMIT in macOS's
// <sys/stat.h>, which golang.org/x/sys/unix does not define for darwin.
const utimeOmit = -2
