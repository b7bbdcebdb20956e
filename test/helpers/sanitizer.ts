/**
 * For children run under `strace`: under the sanitizer run (`test:asan`, test/sanitizer/run.sh) LeakSanitizer cannot
 * work under ptrace and would fail the traced node at exit, so leak checking is off for that child (ASan's other
 * checks stay on). Outside that run it only adds `detect_leaks=0`, which nothing reads.
 */
export function tracedChildEnv(): NodeJS.ProcessEnv {
  return { ...process.env, ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'detect_leaks=0'].filter(Boolean).join(':') };
}
