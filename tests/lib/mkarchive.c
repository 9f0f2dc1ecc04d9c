/* Test helper: writes an archive with libarchive, so tests make their
 * archives at test time.
 *   mkarchive OUT FORMAT [--passphrase P] NAME=SOURCE...
 * FORMAT: zip, tar, tar.gz, tar.bz2, tar.xz, tar.zst, 7z, gz (one member).
 * SOURCE: a file to copy, "@zeros:SIZE" (SIZE bytes of zeros, streamed),
 * "@text:WORDS" (the literal words), or "@link:TARGET" (a symbolic link).
 * NAME is stored as given, "../x" and "/abs" included. */
#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(struct archive *a, const char *what)
{
    fprintf(stderr, "mkarchive: %s: %s\n", what, a ? archive_error_string(a) : "bad arguments");
    return 1;
}

static int set_format(struct archive *a, const char *f)
{
    if (strcmp(f, "zip") == 0)
        return archive_write_set_format_zip(a);
    if (strcmp(f, "7z") == 0)
        return archive_write_set_format_7zip(a);
    if (strcmp(f, "gz") == 0)
        return archive_write_set_format_raw(a) || archive_write_add_filter_gzip(a);
    if (strncmp(f, "tar", 3) != 0)
        return -1;
    int rc = archive_write_set_format_pax_restricted(a);
    if (!strcmp(f, "tar.gz"))
        rc |= archive_write_add_filter_gzip(a);
    else if (!strcmp(f, "tar.bz2"))
        rc |= archive_write_add_filter_bzip2(a);
    else if (!strcmp(f, "tar.xz"))
        rc |= archive_write_add_filter_xz(a);
    else if (!strcmp(f, "tar.zst"))
        rc |= archive_write_add_filter_zstd(a);
    else if (strcmp(f, "tar") != 0)
        return -1;
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return fail(NULL, "usage: mkarchive OUT FORMAT [--passphrase P] NAME=SOURCE...");
    struct archive *a = archive_write_new();
    int i = 3;
    if (set_format(a, argv[2]) != ARCHIVE_OK)
        return fail(a, "format");
    if (argc > 5 && strcmp(argv[3], "--passphrase") == 0) {
        if (archive_write_set_options(a, "zip:encryption=zipcrypt") != ARCHIVE_OK ||
            archive_write_set_passphrase(a, argv[4]) != ARCHIVE_OK)
            return fail(a, "encryption");
        i = 5;
    }
    if (archive_write_open_filename(a, argv[1]) != ARCHIVE_OK)
        return fail(a, argv[1]);
    static char buf[1 << 16];
    for (; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            return fail(NULL, argv[i]);
        *eq = '\0';
        const char *src = eq + 1;
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, argv[i]);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_mtime(e, 1700000000, 0);
        FILE *f = NULL;
        long long size = 0;
        if (strncmp(src, "@link:", 6) == 0) {
            archive_entry_set_filetype(e, AE_IFLNK);
            archive_entry_set_symlink(e, src + 6);
        } else {
            archive_entry_set_filetype(e, AE_IFREG);
            if (strncmp(src, "@zeros:", 7) == 0) {
                size = strtoll(src + 7, NULL, 10);
            } else if (strncmp(src, "@text:", 6) == 0) {
                size = (long long)strlen(src + 6);
            } else {
                if (!(f = fopen(src, "rb")))
                    return fail(NULL, src);
                fseek(f, 0, SEEK_END);
                size = ftell(f);
                fseek(f, 0, SEEK_SET);
            }
            archive_entry_set_size(e, size);
        }
        if (archive_write_header(a, e) != ARCHIVE_OK)
            return fail(a, argv[i]);
        if (strncmp(src, "@text:", 6) == 0) {
            archive_write_data(a, src + 6, (size_t)size);
        } else if (strncmp(src, "@zeros:", 7) == 0) {
            memset(buf, 0, sizeof(buf));
            for (long long left = size; left > 0; left -= (long long)sizeof(buf))
                archive_write_data(a, buf, left < (long long)sizeof(buf) ? (size_t)left : sizeof(buf));
        } else if (f) {
            size_t n;
            while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                archive_write_data(a, buf, n);
            fclose(f);
        }
        archive_entry_free(e);
    }
    if (archive_write_close(a) != ARCHIVE_OK)
        return fail(a, "close");
    archive_write_free(a);
    return 0;
}
