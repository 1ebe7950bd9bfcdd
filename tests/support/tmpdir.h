/*
 * tmpdir.h - a fresh directory per test, removed with everything in it at teardown.
 */
#ifndef RS_TEST_TMPDIR_H
#define RS_TEST_TMPDIR_H

/* Create a directory under $TMPDIR (or /tmp). Returns new: free with rs_test_tmpdir_remove. */
char *rs_test_tmpdir_new(void);

/* Remove the directory and everything below it, then free the path. NULL allowed. */
void rs_test_tmpdir_remove(char *path);

#endif
