;;; eglot_test.el --- hearth through Emacs's Eglot, as editors/README.md configures it  -*- lexical-binding: t -*-

;; emacs --batch -Q -l tests/neovim/eglot_test.el
;;
;; Environment: HEARTH_BIN (the hearth binary), HEARTH_TEST_MODEL (a GGUF model),
;; HEARTH_TEST_TMP (scratch folder). Starts `hearth lsp' with the eglot-server-programs
;; entry of editors/README.md (initializationOptions carrying the settings), waits for the
;; model (hearth/status model_loaded), asks for a classic completion through
;; eglot-completion-at-point after "return ", runs the hearth.status command and checks
;; that the settings arrived. Prints one line per check, then "N passed, N failed"; exits
;; 0 when all passed, 1 otherwise, 77 when Eglot is not installed.

(require 'cl-lib)
(require 'package)
;; Debian's elpa-* packages (site-start, which adds them, is skipped by -Q). Emacs >= 29
;; has Eglot built in.
(add-to-list 'package-directory-list "/usr/share/emacs/site-lisp/elpa")
(package-initialize)

(defvar hearth-test--passed 0)
(defvar hearth-test--failed 0)
(defvar hearth-test--events nil "The `event' of each hearth/status notification, newest first.")

(defun hearth-test--say (fmt &rest args)
  (princ (concat (apply #'format fmt args) "\n")))

(defun hearth-test--check (name ok &optional detail)
  (if ok
      (progn (cl-incf hearth-test--passed) (hearth-test--say "ok   %s" name))
    (cl-incf hearth-test--failed)
    (hearth-test--say "FAIL %s%s" name (if detail (format ": %s" detail) ""))))

(defun hearth-test--finish ()
  (hearth-test--say "%d passed, %d failed" hearth-test--passed hearth-test--failed)
  (kill-emacs (if (and (= hearth-test--failed 0) (> hearth-test--passed 0)) 0 1)))

(defun hearth-test--wait (seconds pred)
  "Process events until PRED is non-nil or SECONDS pass; return PRED's value."
  (let ((deadline (+ (float-time) seconds)) (v nil))
    (while (and (not (setq v (funcall pred))) (< (float-time) deadline))
      (accept-process-output nil 0.05))
    v))

(unless (require 'eglot nil t)
  (hearth-test--say "SKIP eglot: Eglot is not installed (Debian: apt-get install elpa-eglot)")
  (hearth-test--say "0 passed, 0 failed, 1 skipped")
  (kill-emacs 77))

(cl-defmethod eglot-handle-notification
  (_server (_method (eql hearth/status)) &rest params)
  (push (plist-get params :event) hearth-test--events))

(let* ((bin (getenv "HEARTH_BIN"))
       (model (getenv "HEARTH_TEST_MODEL"))
       (tmp (directory-file-name
             (expand-file-name (or (getenv "HEARTH_TEST_TMP") (make-temp-file "hearth-eglot" t)))))
       (root (expand-file-name "proj" tmp))
       (file (expand-file-name "main.py" root)))
  (condition-case err
      (progn
        (unless (and bin (file-executable-p bin)) (error "HEARTH_BIN is not executable: %S" bin))
        (unless (and model (file-readable-p model)) (error "HEARTH_TEST_MODEL is not readable: %S" model))
        (delete-directory tmp t)
        (make-directory (expand-file-name ".git" root) t)
        (make-directory (expand-file-name "cache" tmp) t)
        (with-temp-file file (insert "def add(a, b):\n    return \n"))

        ;; The configuration of editors/README.md.
        (setq eglot-server-programs
              `((python-mode . (,bin "lsp"
                                     :initializationOptions
                                     (:model ,model :backend "cpu" :maxTokens 24
                                      :cacheDir ,(expand-file-name "cache" tmp))))))
        (setq eglot-connect-timeout 30)
        (setq jsonrpc-default-request-timeout 20)

        (find-file file)
        (hearth-test--check "python-mode" (eq major-mode 'python-mode) major-mode)
        (apply #'eglot (eglot--guess-contact))
        (let ((server (hearth-test--wait 30 #'eglot-current-server)))
          (hearth-test--check "eglot connected to hearth" server)
          (unless server (error "no server"))
          (hearth-test--check "the server offers classic completion"
                              (eglot--server-capable :completionProvider))
          (hearth-test--check "model_loaded (hearth/status)"
                              (hearth-test--wait 30 (lambda () (member "model_loaded" hearth-test--events)))
                              hearth-test--events)
          ;; Completion after "    return ".
          (goto-char (point-min))
          (forward-line 1)
          (end-of-line)
          (let* ((capf (eglot-completion-at-point))
                 (table (nth 2 capf))
                 (items (and table (funcall table "" nil t))))
            (hearth-test--check "eglot-completion-at-point gives a non-empty completion"
                                (and items (string-match-p "[^[:space:]]" (car items)))
                                items)
            (hearth-test--say "     completion: %S" (car items)))
          (let ((status (jsonrpc-request server :workspace/executeCommand
                                         '(:command "hearth.status"))))
            (hearth-test--check "hearth.status: ready" (equal (plist-get status :state) "ready")
                                (plist-get status :state))
            (let ((settings (plist-get status :settings)))
              (hearth-test--check "initializationOptions reached the server"
                                  (and (equal (plist-get settings :model) model)
                                       (equal (plist-get settings :backend) "cpu")
                                       (equal (plist-get settings :maxTokens) 24))
                                  settings))
            (hearth-test--check "the project root is the workspace folder"
                                (equal (plist-get (aref (plist-get (plist-get status :workspace) :folders) 0)
                                                  :root)
                                       root)
                                (plist-get status :workspace))
            (hearth-test--check "hearth.status: the completion's statistics"
                                (> (or (plist-get (plist-get status :lastStats) :generated_tokens) 0) 0)
                                (plist-get status :lastStats)))
          ;; Emacs 28's jsonrpc leaves a message that arrived in the same read as a
          ;; request's reply in its buffer until the next one comes; the reply above
          ;; brought the completion's hearth/status notification along.
          (hearth-test--check "hearth/status completion event"
                              (hearth-test--wait 5 (lambda () (member "completion" hearth-test--events)))
                              hearth-test--events)
          (eglot-shutdown server)))
    (error (hearth-test--check "no error" nil (error-message-string err))))
  (hearth-test--finish))

;;; eglot_test.el ends here
