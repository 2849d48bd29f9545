package upload

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/livekit/protocol/livekit"
)

// Azure stores in Azure Blob Storage.
type Azure struct {
	conf   *livekit.AzureBlobUpload
	client *azblob.Client
	base   string
	Retry  Retry
}

var _ Store = (*Azure)(nil)

// NewAzure builds a client with the account's shared key. endpoint is the Blob service URL with
// "{account}" standing for the account name; "" means https://{account}.blob.core.windows.net/
// (sovereign clouds and the Azurite emulator use their own).
func NewAzure(conf *livekit.AzureBlobUpload, endpoint string) (*Azure, error) {
	if conf.GetAccountName() == "" || conf.GetAccountKey() == "" || conf.GetContainerName() == "" {
		return nil, fmt.Errorf("%w: azure.account_name, azure.account_key and azure.container_name are required", ErrPermanent)
	}
	cred, err := azblob.NewSharedKeyCredential(conf.AccountName, conf.AccountKey)
	if err != nil {
		return nil, fmt.Errorf("%w: azure.account_key is not a valid key (base64)", ErrPermanent)
	}
	if endpoint == "" {
		endpoint = "https://{account}.blob.core.windows.net/"
	}
	base := strings.ReplaceAll(endpoint, "{account}", conf.AccountName)
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	client, err := azblob.NewClientWithSharedKeyCredential(base, cred, &azblob.ClientOptions{
		ClientOptions: policy.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1}}, // we retry ourselves
	})
	if err != nil {
		return nil, fmt.Errorf("%w: azure endpoint %q: %v", ErrPermanent, base, err)
	}
	return &Azure{conf: conf, client: client, base: base, Retry: DefaultRetry}, nil
}

// Check reads the container's properties.
func (a *Azure) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := a.client.ServiceClient().NewContainerClient(a.conf.ContainerName).GetProperties(ctx, nil)
	return a.explain("check container", err)
}

// Upload sends the file as a block blob in 8 MiB blocks.
func (a *Azure) Upload(ctx context.Context, localPath, key, contentType string) (string, int64, error) {
	st, err := os.Stat(localPath)
	if err != nil {
		return "", 0, err
	}
	err = a.Retry.do(ctx, func() error {
		f, err := os.Open(localPath)
		if err != nil {
			return err
		}
		defer f.Close()
		uctx, cancel := context.WithTimeout(ctx, attemptTimeout(st.Size()))
		defer cancel()
		_, err = a.client.UploadFile(uctx, a.conf.ContainerName, key, f, &azblob.UploadFileOptions{
			BlockSize: 8 << 20, Concurrency: 4, HTTPHeaders: &blob.HTTPHeaders{BlobContentType: &contentType}})
		return a.explain("upload "+key, err)
	})
	if err != nil {
		return "", 0, err
	}
	return a.base + a.conf.ContainerName + "/" + key, st.Size(), nil
}

func (a *Azure) explain(what string, err error) error {
	if err == nil {
		return nil
	}
	where := fmt.Sprintf("azure container %q of account %q", a.conf.ContainerName, a.conf.AccountName)
	switch {
	case bloberror.HasCode(err, bloberror.ContainerNotFound, bloberror.ResourceNotFound):
		return fmt.Errorf("%w: %s: %s does not exist (create it or fix azure.container_name)", ErrPermanent, what, where)
	case bloberror.HasCode(err, bloberror.AuthenticationFailed, bloberror.AuthorizationFailure, bloberror.InvalidAuthenticationInfo):
		return fmt.Errorf("%w: %s: %s refused the credentials (check azure.account_name and azure.account_key)", ErrPermanent, what, where)
	}
	msg := redactErr(err)
	if i := strings.Index(msg, "\n"); i > 0 {
		msg = msg[:i]
	}
	return fmt.Errorf("%w: %s: %s: %s", ErrUnavailable, what, where, msg)
}
